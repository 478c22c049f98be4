"""amps-sim: simulated FoxESS-class batteries behind a fake of the Amps device-control API, and
the contract-test harness that checks any deployment against the API's OpenAPI spec.

Everything installs under this one import name, so a project with its own top-level `simulator`
or `contracts` package is unaffected: the world is `amps_sim.simulator`, the harness
`amps_sim.contracts`, and this package itself holds the composition root (the CLI).

In a source checkout the two folders sit beside this one (`simulator/`, `contracts/`); the wheel
places them inside it. The path line below lets both layouts import the same names.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
if not (_HERE / "simulator").is_dir() and (_HERE.parent / "simulator" / "__init__.py").is_file():
    __path__.append(str(_HERE.parent))  # source checkout: amps_sim.simulator is ../simulator

__version__ = "0.2.0"

# What partners import, loaded on first use so `import amps_sim` (and the pytest plugin's
# registration) stays cheap.
_EXPORTS = {
    "SimClient": "amps_sim.client",
    "AsyncSimClient": "amps_sim.client",
    "AmpsSimError": "amps_sim.client",
    "AmpsSimUnreachable": "amps_sim.client",
    "AdvanceResult": "amps_sim.client",
    "ClockView": "amps_sim.client",
    "FaultsView": "amps_sim.client",
    "Health": "amps_sim.client",
    "WebhookEndpoint": "amps_sim.client",
    "WebhookSettings": "amps_sim.client",
    "WebhookMessage": "amps_sim.webhook_receiver",
    "TenantWebhooks": "amps_sim.webhook_receiver",
    "InProcessSimulator": "amps_sim.server",
    "AmpsTenant": "amps_sim.pytest_plugin",
    "AmpsSimServer": "amps_sim.pytest_plugin",
}


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'amps_sim' has no attribute {name!r}")
