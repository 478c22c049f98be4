"""The wheel ships every package folder: pyproject.toml lists them by hand (the folders are
remapped under amps_sim), so a new folder must be added there too. A folder of data files only
(e.g. simulator/worlds) counts: Python can import it, and setuptools warns at every build when
an importable folder is left out of the list."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"amps_sim": REPO / "amps_sim", "amps_sim.simulator": REPO / "simulator", "amps_sim.contracts": REPO / "contracts"}


def test_every_package_folder_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = set()
    for prefix, root in FOLDERS.items():
        for folder in (root, *root.rglob("*")):
            if folder.is_dir() and folder.name != "__pycache__" and any(f.is_file() for f in folder.iterdir()):
                found.add(".".join((prefix, *folder.relative_to(root).parts)))
    assert found == listed
