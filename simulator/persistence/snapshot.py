"""A snapshot: every tenant's objects, pickled whole, pending clock events included.

Clock events are closures (`lambda: self._fire(action)`), which the standard pickler refuses.
This pickler stores a nested function by its code (marshal) plus its cells, filling the cells
after the function exists so that cycles (an action holding the event that holds the action)
restore as cycles. Code travels by value, so a snapshot is only ever read by the exact code
that wrote it: :func:`code_fingerprint` names that code, and the store keeps the journal so
any other code can rebuild the state by replaying it.

Objects of the running process that are no state of their own (the request-time source) are
written as references and bound to the live objects on load.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import io
import marshal
import pickle
import types
from pathlib import Path
from typing import Any


def code_fingerprint() -> str:
    """A hash of every Python file of the simulator package: the code a snapshot belongs to."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def _load_code(code: bytes) -> types.CodeType:
    loaded: types.CodeType = marshal.loads(code)
    return loaded


def _module_namespace(module: str) -> dict[str, Any]:
    return importlib.import_module(module).__dict__


def _new_function(code: types.CodeType, namespace: dict[str, Any], cells: int) -> types.FunctionType:
    closure = tuple([types.CellType() for _ in range(cells)]) if cells else None
    return types.FunctionType(code, namespace, code.co_name, None, closure)


def _fill_function(function: types.FunctionType, state: tuple[tuple[Any, ...], Any, Any]) -> None:
    values, defaults, kwdefaults = state
    for cell, value in zip(function.__closure__ or (), values, strict=False):
        if value is not _EMPTY_MARK:
            cell.cell_contents = value
    function.__defaults__ = defaults
    function.__kwdefaults__ = kwdefaults


class _EmptyCell:
    """Stands for a cell that had no value yet (pickled by reference, so identity holds)."""


_EMPTY_MARK = _EmptyCell


def _is_local(function: types.FunctionType) -> bool:
    return "<locals>" in function.__qualname__ or function.__name__ == "<lambda>"


class _Namespace:
    """A module's globals, by name. One instance per module per dump, so the memo shares it."""

    _instances: dict[str, "_Namespace"] = {}

    def __new__(cls, module: str) -> "_Namespace":
        instance = cls._instances.get(module)
        if instance is None:
            instance = cls._instances[module] = super().__new__(cls)
            instance.module = module
        return instance

    module: str


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, live: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._live = live

    def persistent_id(self, obj: Any) -> str | None:
        return self._live.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        # Code objects and module namespaces are shared by every closure made from the same
        # lambda; reduced as objects of their own, the pickle memo stores each once.
        if isinstance(obj, types.FunctionType) and _is_local(obj):
            cells = obj.__closure__ or ()
            values = tuple(_cell_value(cell) for cell in cells)
            args = (obj.__code__, _Namespace(obj.__module__), len(cells))
            return _new_function, args, (values, obj.__defaults__, obj.__kwdefaults__), None, None, _fill_function
        if isinstance(obj, types.CodeType):
            return _load_code, (marshal.dumps(obj),)
        if isinstance(obj, _Namespace):
            return _module_namespace, (obj.module,)
        return NotImplemented



def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY_MARK


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, live: dict[str, Any]) -> None:
        super().__init__(file)
        self._live = live

    def persistent_load(self, pid: Any) -> Any:
        return self._live[pid]


def dump_state(state: Any, live: dict[str, Any]) -> bytes:
    """Pickle `state`; any object in `live` (by identity) is written as its name."""
    buffer = io.BytesIO()
    _Pickler(buffer, {id(obj): name for name, obj in live.items()}).dump(state)
    return buffer.getvalue()


def load_state(data: bytes, live: dict[str, Any]) -> Any:
    # Millions of new objects, none of them garbage: a collection pass in the middle only costs.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Unpickler(io.BytesIO(data), live).load()
    finally:
        if enabled:
            gc.enable()
