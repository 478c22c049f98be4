import pytest
from pydantic import ValidationError

from amps_sim.simulator.profiles import DeviceProfile, load_profile, profile_names


def test_shipped_profiles_are_listed():
    assert profile_names() == ["direct", "foxess", "foxess_legacy"]


def test_unknown_profile_is_a_key_error():
    with pytest.raises(KeyError):
        load_profile("tesla")


def test_load_is_cached():
    assert load_profile("foxess") is load_profile("foxess")


def test_foxess_flags_and_capabilities():
    p = load_profile("foxess")
    assert p.native_scheduler and p.wall_clock_schedule and p.foreign_state_read
    assert p.slot_aware_merge and p.blocks_imperative_while_scheduled and p.readback_reorder
    assert p.default_max_group_count == 8
    assert p.work_modes == ["SelfUse", "Feedin", "Backup", "ForceCharge", "ForceDischarge"]
    assert set(p.commands) == {"charge", "discharge", "idle", "auto.balanced", "auto.reserve", "auto.export"}
    for name in ("charge", "discharge"):
        cap = p.commands[name]
        assert cap.execution == ["immediate", "scheduled", "windowed"]
        assert cap.parameters["target"].model_dump() == {"unit": "percent", "min": 10, "max": 100}
        assert cap.parameters["reserve"].model_dump() == {"unit": "percent", "min": 10, "max": 100}
        assert cap.parameters["power"].model_dump() == {"unit": "kw", "min": 0, "max": None}
    for name in ("idle", "auto.balanced", "auto.reserve", "auto.export"):
        assert p.commands[name].parameters == {}
        assert p.commands[name].execution == ["immediate", "scheduled"]
    assert p.conflict_strategies == ["cancel_and_replace", "queue_after"]
    assert (p.latencies.acknowledge_s, p.latencies.complete_s, p.latencies.reject_s) == (1, 3, 32)
    assert p.group_limits.fd_pwr_max_w == 10500


def test_legacy_differs_only_in_merge_and_text():
    new, old = load_profile("foxess").model_dump(), load_profile("foxess_legacy").model_dump()
    assert old["slot_aware_merge"] is False
    assert "replaces the whole" in old["description"]
    differing = {k for k in new if new[k] != old[k]}
    assert differing == {"name", "description", "slot_aware_merge"}


def test_direct_has_no_scheduler_and_wider_targets():
    p = load_profile("direct")
    assert not (p.native_scheduler or p.wall_clock_schedule or p.foreign_state_read)
    assert not (p.slot_aware_merge or p.blocks_imperative_while_scheduled or p.readback_reorder)
    assert p.default_max_group_count == 0
    for name in ("charge", "discharge"):
        params = p.commands[name].parameters
        assert (params["target"].min, params["target"].max) == (0, 100)
        assert (params["reserve"].min, params["reserve"].max) == (0, 100)
    assert set(p.commands) == set(load_profile("foxess").commands)


def test_profile_model_is_closed_and_frozen():
    data = load_profile("foxess").model_dump()
    with pytest.raises(ValidationError):
        DeviceProfile.model_validate({**data, "surprise": 1})
    with pytest.raises(ValidationError):
        load_profile("foxess").name = "other"


def test_traits_read_as_the_profile_says_and_survive_a_snapshot():
    # The platform reads these flags per push from the device's traits, not from the model:
    # they must say what the profile says, for every shipped profile.
    import pickle
    from datetime import datetime, timezone

    from amps_sim.simulator.device import Device
    from amps_sim.simulator.profiles import profile_traits
    from amps_sim.simulator.world.tenants import DeviceSpec

    for name in profile_names():
        profile, traits = load_profile(name), profile_traits(name)
        assert traits.wall_clock_rows == (profile.native_scheduler and profile.wall_clock_schedule)
        assert traits.foreign_state_read == profile.foreign_state_read
        assert traits.slot_aware_merge == profile.slot_aware_merge
        assert traits.blocks_imperative_while_scheduled == profile.blocks_imperative_while_scheduled
        device = Device(DeviceSpec.model_validate({"id": f"dev_{name}", "profile": name}), datetime(2026, 5, 8, tzinfo=timezone.utc))
        assert device.traits is traits
        assert pickle.loads(pickle.dumps(device)).traits is traits
    assert {profile_traits(name).slot_aware_merge for name in profile_names()} == {True, False}
