"""Where the served OpenAPI documents live (see :mod:`simulator.specs`)."""

from ..specs import control_spec_path, public_spec_path

PUBLIC_SPEC_PATH = public_spec_path()
CONTROL_SPEC_PATH = control_spec_path()
