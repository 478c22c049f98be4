"""The FoxESS cloud of FoxESS-class devices (profiles with ``oem_cloud: foxess``): its native
Open API's rules, as domain code with no HTTP in it.

- :mod:`.adapter` -- the platform's OEM gateway for these devices: native calls, in process,
  through a cloud session for the platform's own key.
- :mod:`.cloud` -- keys and sessions: the one rule engine every native call goes through.
- :mod:`.shapes` -- the wire shapes of each API version (pure functions).
- :mod:`.quotas` -- daily allowance and pacing per key, on the tenant's clock.
- :mod:`.signature` -- the request signature.

The errnos are :mod:`simulator.errnos`; the HTTP face, the sub-app mounted at ``/foxess``, is
:mod:`simulator.web.foxess`. Imports point one way: ``adapter`` → ``cloud`` → ``quotas`` → the
device model and the OEM boundary (:mod:`simulator.oem`); nothing here imports the platform or the
world.
"""
