"""§2: every validation refusal of a push, with the details the contract names."""

from __future__ import annotations

from tests.conftest import Api


async def test_unsupported_mode(api: Api) -> None:
    reply = await api.push("dev_fox", "boost")
    assert reply.status == 422 and reply.code == "UNSUPPORTED_MODE"
    caps = reply.details["deviceCapabilities"]
    assert set(caps) == {"charge", "discharge", "idle", "auto.balanced", "auto.reserve", "auto.export"}


async def test_unsupported_parameter(api: Api) -> None:
    reply = await api.push("dev_fox", "auto.balanced", parameters={"target": {"value": 50, "unit": "percent"}})
    assert reply.status == 422 and reply.code == "UNSUPPORTED_PARAMETER"
    assert reply.details["unsupportedParameters"] == ["target"]
    assert reply.details["deviceCapabilities"] == {"auto.balanced": {"parameters": {}, "execution": ["immediate", "scheduled"]}}
    reply = await api.push("dev_fox", "charge", parameters={"speed": {"value": 1, "unit": "x"}, "boost": {"value": 1, "unit": "x"}})
    assert reply.details["unsupportedParameters"] == ["boost", "speed"]


async def test_unsupported_unit(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", parameters={"power": {"value": 3000, "unit": "w"}})
    assert reply.status == 422 and reply.code == "UNSUPPORTED_UNIT"
    assert reply.details == {"parameter": "power", "providedUnit": "w", "supportedUnits": ["kw"]}


async def test_parameter_out_of_range(api: Api) -> None:
    reply = await api.push("dev_fox", "charge", parameters={"power": {"value": 7.5, "unit": "kw"}})
    assert reply.status == 422 and reply.code == "PARAMETER_OUT_OF_RANGE"
    assert reply.details == {"parameter": "power", "value": 7.5, "min": 0, "max": 5.0, "unit": "kw"}
    low = await api.push("dev_fox", "discharge", parameters={"target": {"value": 5, "unit": "percent"}})
    assert low.details == {"parameter": "target", "value": 5, "min": 10, "max": 100, "unit": "percent"}


async def test_reserve_above_discharge_floor_is_out_of_range(api: Api) -> None:
    reply = await api.push("dev_fox", "discharge", parameters={"target": {"value": 20, "unit": "percent"},
                                                              "reserve": {"value": 40, "unit": "percent"}})
    assert reply.code == "PARAMETER_OUT_OF_RANGE"
    assert reply.details == {"parameter": "reserve", "value": 40, "min": 10, "max": 20.0, "unit": "percent"}


async def test_execution_not_supported(api: Api) -> None:
    reply = await api.push("dev_fox", "idle", start="1h", end="2h")
    assert reply.status == 422 and reply.code == "EXECUTION_NOT_SUPPORTED"
    assert reply.details == {"requestedExecution": "windowed", "supportedExecution": ["immediate", "scheduled"]}


async def test_every_field_is_kept_in_the_record(api: Api) -> None:
    params = {"target": {"value": 80, "unit": "percent"}, "power": {"value": 2.5, "unit": "kw"}, "reserve": {"value": 20, "unit": "percent"}}
    reply = await api.push("dev_fox", "charge", parameters=params, start="2026-05-08T10:00:00Z", end="2026-05-08T11:00:00Z")
    record = await api.action(reply.body["actionId"])
    assert record["parameters"] == {"mode": "charge", **params}
    assert record["start"] == "2026-05-08T10:00:00.000Z" and record["end"] == "2026-05-08T11:00:00.000Z"
    await api.advance(to="2026-05-08T10:00:05Z")
    group = (await api.truth("dev_fox"))["scheduler"]["groups"][0]
    assert {k: group[k] for k in ("workMode", "maxSoc", "fdPwr", "minSocOnGrid")} == {
        "workMode": "ForceCharge", "maxSoc": 80, "fdPwr": 2500, "minSocOnGrid": 20}


async def test_unknown_device_is_404_before_body_checks(api: Api) -> None:
    reply = await api.call("POST", "/battery/dev_nope", data="{", headers={"Content-Type": "application/json"})
    assert reply.status == 404 and reply.code == "DEVICE_NOT_FOUND"
