"""The partner's own tariff contracts. (A package named `contracts` must not collide with
amps-sim's harness, which is `amps_sim.contracts`.)"""

from datetime import time

CHEAP_FROM = time(22, 0)
CHEAP_UNTIL = time(5, 0)
