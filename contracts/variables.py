"""`${name}` interpolation and the values a scenario saves from replies."""

from __future__ import annotations

import json
import re
from typing import Any

from amps_sim.contracts.matching import MISSING, lookup

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnknownVariable(KeyError):
    pass


class Variables:
    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(initial or {})

    def resolve(self, value: Any) -> Any:
        """`value` with every `${name}` replaced; a string that is only `${name}` takes the value's type."""
        if isinstance(value, str):
            whole = _VARIABLE.fullmatch(value)
            if whole:
                return self._get(whole.group(1))
            return _VARIABLE.sub(lambda m: self._text(self._get(m.group(1))), value)
        if isinstance(value, dict):
            return {self.resolve(k) if isinstance(k, str) else k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _get(self, name: str) -> Any:
        if name not in self.values:
            raise UnknownVariable(name)
        return self.values[name]

    @staticmethod
    def _text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def save_from(self, reply: dict[str, Any], save: dict[str, str]) -> list[str]:
        """Store each named reply path; the paths that were not in the reply."""
        missing = []
        for name, path in save.items():
            value = lookup(reply, path)
            if value is MISSING:
                missing.append(path)
            else:
                self.values[name] = value
        return missing
