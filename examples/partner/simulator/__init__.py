"""The partner's own price simulator. (A package named `simulator` must not collide with
amps-sim's, which is `amps_sim.simulator`.)"""


def price_pence_per_kwh(hour: int) -> float:
    return 7.5 if hour >= 22 or hour < 5 else 28.0
