from datetime import datetime, timedelta, timezone

import pytest

from amps_sim.simulator.battery import LOAD_KW, SOLAR_KW, Battery, Drive

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


def bat(soc: float = 50.0, **kw) -> Battery:
    return Battery(capacity_kwh=kw.pop("capacity_kwh", 10.0), soc=soc, max_power_kw=kw.pop("max_power_kw", 5.0), updated_at=T0, **kw)


def test_force_charge_power_is_capped_by_inverter():
    b = bat()
    assert b.power_kw(Drive("ForceCharge", fd_pwr_kw=3.0), 12) == 3.0
    assert b.power_kw(Drive("ForceCharge", fd_pwr_kw=9.0), 12) == 5.0
    assert b.power_kw(Drive("ForceCharge"), 12) == 5.0


def test_force_charge_stops_at_max_soc():
    assert bat(80).power_kw(Drive("ForceCharge", max_soc=80), 3) == 0
    assert bat(100).power_kw(Drive("ForceCharge"), 3) == 0
    assert bat(79).power_kw(Drive("ForceCharge", max_soc=80), 3) == 5.0


def test_force_discharge_floor_is_higher_of_fdsoc_and_reserve():
    d = Drive("ForceDischarge", fd_soc=20, min_soc_on_grid=30)
    assert bat(30).power_kw(d, 3) == 0
    assert bat(31).power_kw(d, 3) == -5.0
    assert bat(10).power_kw(Drive("ForceDischarge"), 3) == 0  # default floor 10
    assert bat(11).power_kw(Drive("ForceDischarge"), 3) == -5.0


def test_zero_power_discharge_is_a_hold():
    assert bat(60).power_kw(Drive("ForceDischarge", fd_pwr_kw=0.0), 19) == 0


def test_limit_ahead_and_integrate_snap_onto_limit():
    b = bat(50)
    d = Drive("ForceCharge", max_soc=80)
    seconds, level = b.limit_ahead(d, 5.0)
    assert level == 80 and seconds == pytest.approx(0.6 * 3600)  # 3 kWh at 5 kW
    b.integrate(5.0, seconds, T0 + timedelta(seconds=seconds), limit=level, reached=True)
    assert b.soc == 80 and b.power_kw(d, 3) == 0


def test_integrate_never_passes_limit_or_bounds():
    b = bat(50)
    b.integrate(5.0, 3 * 3600, T0, limit=100)
    assert b.soc == 100
    b = bat(12, hard_floor=11)
    b.integrate(-5.0, 3600, T0)
    assert b.soc == 11


def test_self_use_follows_household_profile():
    b = bat(50)
    assert b.power_kw(Drive("SelfUse"), 3) == pytest.approx(-LOAD_KW[3])  # night: cover base load
    assert b.power_kw(Drive("SelfUse"), 12) == pytest.approx(SOLAR_KW[12] - LOAD_KW[12])  # noon surplus
    assert b.power_kw(Drive("SelfUse"), 12) > 0
    assert b.power_kw(Drive("SelfUse"), 19) < -1.0  # evening peak
    assert bat(10).power_kw(Drive("SelfUse"), 19) == 0  # reserve default 10
    assert bat(20).power_kw(Drive("SelfUse", min_soc_on_grid=20), 19) == 0
    assert bat(100).power_kw(Drive("SelfUse"), 12) == 0


def test_household_tables_shape():
    assert all(SOLAR_KW[h] == 0 for h in (0, 1, 2, 3, 4, 5, 21, 22, 23))
    assert max(SOLAR_KW) == SOLAR_KW[12] == SOLAR_KW[13]
    assert 2.5 <= max(SOLAR_KW) <= 3.5
    assert all(1.5 <= LOAD_KW[h] <= 2.0 for h in range(17, 22))


def test_backup_never_discharges_and_feedin_never_charges():
    for hour in range(24):
        assert bat(50).power_kw(Drive("Backup"), hour) >= 0
        assert bat(50).power_kw(Drive("Feedin"), hour) < 0
    assert bat(50).power_kw(Drive("Backup"), 12) > 0
    assert bat(10).power_kw(Drive("Feedin"), 19) == 0


def test_drive_rejects_unknown_mode():
    with pytest.raises(ValueError):
        Drive("Turbo")
