"""World files (`amps-sim serve --world FILE`, `@pytest.mark.amps_world(PATH)`): read, checked,
and refused with the file, the line and the problem, the way scenario files are."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from amps_sim.contracts.loader import Problem, ScenarioFileError, _problems, read_yaml
from amps_sim.simulator.device import Device
from amps_sim.simulator.world.tenants import WorldFile

DEFAULT_WORLD = "the embedded default world"


class WorldFileError(Exception):
    """A world that cannot be used; `str()` is one `FILE:LINE: where: problem` line per problem."""

    def __init__(self, origin: str, problems: list[Problem]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(str(ScenarioFileError(Path(origin), problems)))


def default_world_text() -> str:
    return resources.files("amps_sim.simulator").joinpath("worlds/default.yaml").read_text(encoding="utf-8")


def _read(path: Path) -> str:
    if not path.exists():
        raise WorldFileError(str(path), [Problem(1, "", "no such file")])
    if path.is_dir():
        raise WorldFileError(str(path), [Problem(1, "", "is a directory, not a world file")])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorldFileError(str(path), [Problem(1, "", f"cannot read: {exc}")]) from None


def parse_world(text: str, origin: str) -> WorldFile:
    try:
        data, lines = read_yaml(text, Path(origin))
    except ScenarioFileError as exc:
        raise WorldFileError(origin, exc.problems) from None
    if not isinstance(data, dict):
        raise WorldFileError(origin, [Problem(1, "", "a world file is a mapping (apiKey, clock, devices, oemQuotas)")])
    return _validate(data, origin, lines)


def _validate(data: Mapping[str, Any], origin: str, lines: dict[tuple[Any, ...], int] | None = None) -> WorldFile:
    try:
        world = WorldFile.model_validate(dict(data))
    except ValidationError as exc:
        raise WorldFileError(origin, _problems(exc, data, lines or {})) from None
    _check_devices_build(world, origin, lines or {})
    return world


def _check_devices_build(world: WorldFile, origin: str, lines: dict[tuple[Any, ...], int]) -> None:
    """Build each device once, as the server will: the simulated OEM refuses some well-formed
    scheduler rows (overlaps, errno 42023), and that belongs to the file, at the device's line."""
    start = world.clock.now if world.clock is not None and world.clock.now is not None else datetime.now(timezone.utc)
    problems = []
    for index, spec in enumerate(world.devices):
        try:
            Device(spec, start)
        except ValueError as exc:
            problems.append(Problem(lines.get(("devices", index), 1), f"devices[{index}]", f"the device's scheduler rows are refused: {exc}"))
    if problems:
        raise WorldFileError(origin, problems)


def load_world(path: str | Path | None) -> WorldFile:
    """A world file, or the embedded default world when `path` is None."""
    if path is None:
        return parse_world(default_world_text(), DEFAULT_WORLD)
    return parse_world(_read(Path(path)), str(path))


def world_from_mapping(data: Mapping[str, Any], origin: str = "the amps_world marker") -> WorldFile:
    """A world given as a dict (the pytest marker's inline form), checked like a file."""
    return _validate(data, origin)
