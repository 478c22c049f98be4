"""The two OpenAPI documents, shipped as package data: the one place that says where they are.

`openapi.yaml` here is a symbolic link to the repository's top-level `openapi.yaml` (the file
users read), so the two are the same bytes by construction; a wheel build copies the target in.
`control-openapi.yaml` (the `/_sim` control API) lives here outright.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PUBLIC_SPEC_NAME = "openapi.yaml"
CONTROL_SPEC_NAME = "control-openapi.yaml"


def spec_path(name: str) -> Path:
    """The file of a spec shipped with the package; `FileNotFoundError` names what is missing."""
    entry = resources.files(__name__).joinpath(name)
    path = Path(str(entry))
    if not path.is_file():
        raise FileNotFoundError(f"{name} is missing from the installed amps-sim package ({path})")
    return path


def public_spec_path() -> Path:
    return spec_path(PUBLIC_SPEC_NAME)


def control_spec_path() -> Path:
    return spec_path(CONTROL_SPEC_NAME)
