"""The FoxESS cloud of FoxESS-class devices: its native Open API and the rules behind it.

- :mod:`.codes` -- every errno and its text.
- :mod:`.signature` -- the request signature.
- :mod:`.quotas` -- daily allowance and pacing per key, on the tenant's clock.
- :mod:`.shapes` -- the wire shapes of each API version (pure functions, no HTTP).
- :mod:`.cloud` -- keys and sessions: the one rule engine every native call goes through.
- :mod:`.adapter` -- the platform's OEM gateway for FoxESS-class devices, in process.

Its HTTP face, the sub-app mounted at ``/foxess``, is :mod:`simulator.web.foxess`.
Imports point one way: ``cloud`` → (``adapter``, ``shapes``, ``quotas``, ``codes``) →
the device model. Nothing here imports the platform or the world at run time.
"""
