"""Where the served OpenAPI documents live."""

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_SPEC_PATH = _ROOT / "openapi.yaml"
CONTROL_SPEC_PATH = _ROOT / "contracts" / "control-openapi.yaml"
