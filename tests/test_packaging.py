"""The wheel ships every package folder: pyproject.toml lists them by hand (the folders are
remapped under amps_sim), so a new folder must be added there too."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"amps_sim": REPO / "amps_sim", "amps_sim.simulator": REPO / "simulator", "amps_sim.contracts": REPO / "contracts"}


def test_every_package_folder_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = set()
    for prefix, root in FOLDERS.items():
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            found.add(".".join((prefix, *parts)))
    assert found == listed
