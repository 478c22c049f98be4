"""Reading scenario files: YAML with line numbers, then the strict model, errors mapped to lines.

PyYAML's plain `safe_load` forgets where things were, so a file is composed to nodes and turned
into Python values here, keeping a table from each value's path (`("steps", 3, "push")`) to its
line. Pydantic reports an error location as such a path, with union tags mixed in; the deepest
prefix that exists in the data gives the line. Duplicate keys are refused (YAML would silently
keep the last), and unquoted timestamps stay strings (YAML would turn them into datetimes).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml
from pydantic import BaseModel, ValidationError

from amps_sim.contracts import expectations, scenario, steps
from amps_sim.contracts.matching import MatcherSyntaxError
from amps_sim.contracts.scenario import Scenario

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Names every scenario may use without saving them first.
BUILTIN_VARIABLES = frozenset({"key", "now"})
# Set by the runner when the scenario receives webhooks: its endpoint's id and first secret.
WEBHOOK_VARIABLES = frozenset({"webhook", "webhook_secret"})


@dataclass(frozen=True)
class Problem:
    line: int
    where: str
    message: str


class ScenarioFileError(Exception):
    """A scenario file that cannot be used, with every problem found and its line."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(
            f"{self.path}:{p.line}: {p.where + ': ' if p.where else ''}{p.message}" for p in self.problems
        )

    @property
    def line(self) -> int:
        return self.problems[0].line if self.problems else 1


@dataclass
class LoadedScenario:
    """A scenario and where it came from."""

    path: Path
    scenario: Scenario
    lines: dict[tuple[Any, ...], int] = field(repr=False)
    root: Path | None = None

    @property
    def relative(self) -> str:
        """The path shown in reports: relative to the suite root when known."""
        if self.root is not None:
            try:
                return self.path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return self.path.as_posix()

    @property
    def area(self) -> str:
        parts = Path(self.relative).parts
        return parts[-2] if len(parts) >= 2 else ""

    def step_line(self, index: int) -> int:
        return self.lines.get(("steps", index), 1)

    @property
    def keywords(self) -> str:
        """What `-k` matches against."""
        return " ".join([self.relative, self.scenario.name, *self.scenario.tags])


# ---- YAML with lines ---------------------------------------------------------------------------


def _to_python(loader: Any, node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int],
               problems: list[Problem]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # honour `<<: *anchor` merges
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _TIMESTAMP_TAG:
                key = key_node.value
            if not isinstance(key, (str, int, float, bool)) or key is None:
                problems.append(Problem(key_node.start_mark.line + 1, _where(path), "mapping keys must be plain scalars"))
                continue
            if key in result:
                problems.append(Problem(key_node.start_mark.line + 1, _where(path), f"duplicate key {key!r}"))
                continue
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _to_python(loader, value_node, path + (key,), lines, problems)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, path + (i,), lines, problems) for i, item in enumerate(node.value)]
    if node.tag == _TIMESTAMP_TAG:
        return node.value  # keep "2026-05-08T08:00:00Z" a string, as the API takes it
    return loader.construct_object(node, deep=True)


def read_yaml(text: str, path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The document as Python values, and the line of every value by its path."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioFileError(path, [Problem(1, "", "the file is empty")])
        lines: dict[tuple[Any, ...], int] = {}
        problems: list[Problem] = []
        data = _to_python(loader, node, (), lines, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ScenarioFileError(path, [Problem(line, "", f"not valid YAML: {message}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError(path, [Problem(1, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise ScenarioFileError(path, problems)
    return data, lines


# ---- pydantic errors to lines ------------------------------------------------------------------


def _where(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """The part of a pydantic location that exists in the data.

    Locations mix data keys with union tags (`steps, 0, push, expect` where the first `push` is
    the tag of the step's model). A tag can also be a data key, so both readings are tried and
    the one that places the most of the location wins, ties going to the one that places its end.
    """
    best: tuple[int, bool, tuple[Any, ...]] = (0, False, ())

    def walk(index: int, node: Any, found: tuple[Any, ...]) -> None:
        nonlocal best
        if index == len(loc):
            score = (len(found), bool(found) and found[-1] == loc[-1], found)
            if score[:2] > best[:2]:
                best = score
            return
        part = loc[index]
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            walk(index + 1, node[part], found + (part,))
        walk(index + 1, node, found)  # or read the part as a tag

    walk(0, data, ())
    return best[2]


def _vocabulary() -> list[str]:
    names: set[str] = set()
    for value in (*vars(scenario).values(), *vars(steps).values(), *vars(expectations).values()):
        if isinstance(value, type) and issubclass(value, BaseModel):
            # The names a file spells: a field's alias when it has one (`as` for a native party).
            names.update(field.alias or name for name, field in value.model_fields.items())
    return sorted(names)


def _message(error: Any, loc: tuple[Any, ...]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, _vocabulary(), n=1, cutoff=0.75)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return f"missing required key {str(error['loc'][-1])!r}"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, MatcherSyntaxError):
        return str(cause).split(": ", 1)[-1] if cause.parts else str(cause)
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _problems(exc: ValidationError, data: Any, lines: dict[tuple[Any, ...], int]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[int, str, str]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error.get("loc", ()))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, MatcherSyntaxError):
            loc = loc + cause.parts  # point at the matcher itself, not the whole expectation
        located = _locate(loc, data)
        # A missing key has no line of its own: point at the mapping that lacks it.
        line = lines.get(located, 1)
        where = _where(located)
        if error.get("type") == "missing":
            where = _where(located + (loc[-1],)) if loc else where
        key = (line, where, _message(error, loc))
        if key not in seen:
            seen.add(key)
            problems.append(Problem(*key))
    return _drop_union_noise(problems)


def _drop_union_noise(problems: list[Problem]) -> list[Problem]:
    """`str | {by, to}` fields report one error per union member; keep the ones that say most."""
    by_place: dict[tuple[int, str], list[Problem]] = {}
    for problem in problems:
        by_place.setdefault((problem.line, problem.where), []).append(problem)
    kept: list[Problem] = []
    for group in by_place.values():
        specific = [p for p in group if not p.message.startswith("Input should be")]
        kept.extend(specific or group[:1])
    return kept


# ---- variables ---------------------------------------------------------------------------------


def _strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, path + (index,))


def _check_variables(data: dict[str, Any], scenario: Scenario, lines: dict[tuple[Any, ...], int]) -> list[Problem]:
    """Every `${name}` must be saved by an earlier step (or be a built-in)."""
    problems: list[Problem] = []
    known = set(BUILTIN_VARIABLES)
    if scenario.uses_webhooks:
        known.update(WEBHOOK_VARIABLES)
    for index, (raw, step) in enumerate(zip(data.get("steps", []), scenario.steps, strict=True)):
        if not isinstance(raw, dict):
            continue
        for path, text in _strings({k: v for k, v in raw.items() if k != "save"}, ("steps", index)):
            for name in _VARIABLE.findall(text):
                if name not in known:
                    problems.append(
                        Problem(
                            lines.get(path, lines.get(("steps", index), 1)),
                            _where(path),
                            f"${{{name}}} is not saved by an earlier step (known: {', '.join(sorted(known))})",
                        )
                    )
        save = getattr(step, "save", None)
        if save:
            known.update(save)
    return problems


# ---- entry points ------------------------------------------------------------------------------


def parse_scenario(text: str, path: Path, root: Path | None = None) -> LoadedScenario:
    data, lines = read_yaml(text, path)
    if not isinstance(data, dict):
        raise ScenarioFileError(path, [Problem(1, "", "a scenario file holds one mapping (name, description, ...)")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioFileError(path, _problems(exc, data, lines)) from None
    except MatcherSyntaxError as exc:  # raised outside pydantic's wrapping in odd cases
        raise ScenarioFileError(path, [Problem(1, "", str(exc))]) from None
    problems = _check_variables(data, scenario, lines)
    if problems:
        raise ScenarioFileError(path, problems)
    return LoadedScenario(path=path, scenario=scenario, lines=lines, root=root)


def load_scenario(path: str | Path, root: Path | None = None) -> LoadedScenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(path, [Problem(1, "", f"cannot read: {exc}")]) from None
    return parse_scenario(text, path, root)


def suite_root(file: Path, fallback: Path) -> Path:
    """The nearest enclosing `scenarios/` folder, so `conflicts/x.yaml` reads the same in reports
    whether the run was given `scenarios/`, `scenarios/conflicts/` or the file itself."""
    for parent in file.parents:
        if parent.name == "scenarios":
            return parent
    return fallback


def scenario_files(paths: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """Every `*.yaml`/`*.yml` under the given files and folders, sorted, each with its suite root."""
    found: list[tuple[Path, Path]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for file in sorted(list(path.rglob("*.yaml")) + list(path.rglob("*.yml"))):
                if not any(part.startswith(".") for part in file.relative_to(path).parts):
                    found.append((file, suite_root(file, path)))
        elif path.exists():
            found.append((path, suite_root(path, path.parent)))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def load_suite(paths: Iterable[str | Path]) -> tuple[list[LoadedScenario], list[ScenarioFileError]]:
    """Every scenario under `paths`, and the files that could not be loaded."""
    loaded: list[LoadedScenario] = []
    broken: list[ScenarioFileError] = []
    for file, root in scenario_files(paths):
        try:
            loaded.append(load_scenario(file, root))
        except ScenarioFileError as exc:
            broken.append(exc)
    return loaded, broken
