"""What the schemathesis runs found, one test per fix, outside the fuzzer.

Each test names the finding (the schemathesis check that reported it) and drives the real app
through the `sim` / `api` fixtures, which also validate every reply against the specs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import yaml
from jsonschema_rs import Draft202012Validator

from amps_sim.contracts.spec import load_control, load_public
from tests.conftest import NOW, Api, foxess

CHARGE = {"command": "charge", "parameters": {"target": {"value": 90, "unit": "percent"}}}


def _with_formats(pointer: str) -> Draft202012Validator:
    """A control-spec schema validator that also asserts `format` (as schemathesis does)."""
    return load_control().schema_validator(pointer, formats=True)


# ---- public API ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"action": CHARGE, "onConflict": None},
        {"action": {**CHARGE, "start": None}},
        {"action": {**CHARGE, "start": "1h", "end": None}},
        {"action": {"command": "idle", "parameters": None}},
    ],
    ids=["onConflict", "start", "end", "parameters"],
)
async def test_explicit_null_for_an_optional_push_field_is_malformed(api: Api, body: dict[str, Any]) -> None:
    # negative_data_rejection: `{"onConflict": null}` was accepted (202) as if the field were
    # absent; the spec types these fields as string/object, never null.
    reply = await api.call("POST", "/battery/dev_fox", json_body=body)
    assert reply.status == 400 and reply.code == "INVALID_REQUEST", reply.body
    assert (await api.call("GET", "/actions")).body["total"] == 0


@pytest.mark.parametrize("action", [{**CHARGE, "start": ""}, {**CHARGE, "start": "", "end": ""}], ids=["start", "window"])
async def test_an_empty_start_is_a_bad_time_not_an_immediate_push(api: Api, action: dict[str, Any]) -> None:
    # positive_data_acceptance trial: `"start": ""` was read as "no start" and the push ran
    # immediately; an empty string is present, and it is not a time.
    reply = await api.call("POST", "/battery/dev_fox", json_body={"action": action})
    assert reply.status == 422 and reply.code == "INVALID_TIME_WINDOW"
    assert reply.details["reason"] == "invalid_format" and reply.details["field"] == "start"
    assert (await api.call("GET", "/actions")).body["total"] == 0


@pytest.mark.parametrize("raw", ["1_0", "+5", " 5", "5 ", "\u0665", "0x10", "5.0", "1e1", ""])
async def test_integer_query_parameters_take_plain_digits_only(api: Api, raw: str) -> None:
    # Python's int() also reads "1_0", "+5", " 5" and Arabic-Indic digits; the spec's integer does not.
    for name in ("limit", "offset"):
        reply = await api.call("GET", f"/actions?{name}={quote(raw)}")
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", (name, raw)
        assert reply.details["errors"][0]["path"] == f"query.{name}"


async def test_plain_integer_query_parameters_still_work(api: Api) -> None:
    reply = await api.call("GET", "/actions?limit=50&offset=0")
    assert reply.status == 200 and reply.body["limit"] == 50
    reply = await api.call("GET", "/actions?limit=007&offset=12345678901234567890")
    assert reply.status == 200 and reply.body["limit"] == 7 and reply.body["actions"] == []


async def test_the_served_openapi_document_matches_its_own_response_schema(api: Api) -> None:
    # response_schema_conformance: the spec said this response is a string, but a client that
    # parses the YAML (as schemathesis does) gets an object.
    async with api.client.get("/openapi.yaml") as resp:
        assert resp.status == 200 and resp.content_type == "application/yaml"
        document = yaml.safe_load(await resp.read())
    public = load_public()
    pointer = "/paths/~1openapi.yaml/get/responses/200/content/application~1yaml/schema"
    assert public.schema_validator(pointer).is_valid(document)
    assert document["info"]["title"] == public.document["info"]["title"]


# ---- control API: tenants ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"null", b" ", b"\n", b"[]", b"1"])
async def test_a_tenant_body_that_is_not_an_object_is_malformed(sim: Api, raw: bytes) -> None:
    # negative_data_rejection: a body of JSON `null`, and one of only whitespace, created a
    # default tenant (201) as if no body had been sent.
    reply = await sim.call("POST", "/_sim/tenants", data=raw, headers={"Content-Type": "application/json"}, key=None)
    assert reply.status == 400 and reply.code == "INVALID_REQUEST"


async def test_a_tenant_without_a_body_still_gets_the_defaults(sim: Api) -> None:
    reply = await sim.call("POST", "/_sim/tenants", key=None)
    assert reply.status == 201


async def test_a_clock_without_a_mode_is_virtual(sim: Api) -> None:
    # The spec required `clock.mode` while the server defaulted it: a body the spec called
    # invalid was accepted. The spec now documents the default.
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body={"clock": {"now": NOW}})
    assert reply.status == 201
    clock = await Api(sim.client, reply.body["apiKey"]).call("GET", "/_sim/clock")
    assert clock.body == {"now": "2026-05-08T08:00:00.000Z", "mode": "virtual"}


@pytest.mark.parametrize("clock", [None, {"now": None}, {"now": 1778227200}, {"now": "1778227200"},
                                   {"now": "2026-05-08 08:00:00Z"}, {"now": "2026-05-08T08:00:00"}])
async def test_a_clock_that_is_not_an_rfc3339_instant_is_malformed(sim: Api, clock: Any) -> None:
    # negative_data_rejection: null and Unix times (numbers or digit strings) were accepted for a
    # `format: date-time` string.
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body={"clock": clock} if clock is not None else {"clock": None})
    assert reply.status == 400 and reply.code == "INVALID_REQUEST", reply.body


@pytest.mark.parametrize("now", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1999-12-31T23:59:59Z",
                                 "2200-01-01T00:00:00Z", "4962-07-18T21:59:51.0+09:56"])
async def test_a_clock_outside_the_simulated_range_is_refused(sim: Api, now: str) -> None:
    # positive_data_acceptance: a valid RFC 3339 instant far from today was a 400, and one next to
    # datetime's limits could not be converted to UTC at all. It is well formed, so 422.
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body={"clock": {"mode": "virtual", "now": now}})
    assert reply.status == 422 and reply.code == "CLOCK_OUT_OF_RANGE", reply.body


async def test_two_devices_with_one_id_conflict(sim: Api) -> None:
    # positive_data_acceptance: the spec cannot say "ids unique" for an array of objects, so a
    # schema-valid spec was refused with 400. It is the same conflict as POST /_sim/devices with
    # a taken id: 409 DEVICE_EXISTS.
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body={"devices": [{"id": "a"}, {"id": "a"}]})
    assert reply.status == 409 and reply.code == "DEVICE_EXISTS"


@pytest.mark.parametrize("where", ["tenant", "device"])
async def test_an_unknown_but_well_formed_zone_is_refused_not_malformed(sim: Api, where: str) -> None:
    # positive_data_acceptance: any string was a valid `timeZone` in the spec, and the server said
    # 400. Now the spec has the shape of an IANA name (400 when broken) and an unknown name is 422.
    tenant = await sim.tenant([])
    for zone, status, code in (("Mars/Olympus", 422, "UNKNOWN_TIME_ZONE"), ("Factory", 422, "UNKNOWN_TIME_ZONE"),
                               ("../etc/passwd", 400, "INVALID_REQUEST"), ("\u0004:\u0084", 400, "INVALID_REQUEST"),
                               ("Europe/London", None, None)):
        device = {"id": "dev_z", "timeZone": zone}
        if where == "tenant":
            reply = await sim.call("POST", "/_sim/tenants", key=None, json_body={"devices": [device]})
            ok = 201
        else:
            reply = await tenant.call("POST", "/_sim/devices", json_body=device)
            ok = 201
        if status is None:
            assert reply.status == ok, reply.body
            continue
        assert reply.status == status and reply.code == code, (zone, reply.body)
        control = load_control()
        pattern_ok = control.schema_validator("/components/schemas/DeviceSpec").is_valid(device)
        assert pattern_ok == (status == 422), zone  # the spec and the server draw the line alike


async def test_integral_floats_are_integers(sim: Api) -> None:
    # positive_data_acceptance: JSON Schema's `integer` takes 921.0, pydantic's strict int did
    # not (`times`, the scheduler rows' parameters, `maxGroupCount`, `oemQuotas.dailyCalls`).
    rows = [{"start": "22:00", "end": "23:59", "workMode": "ForceCharge", "fdPwr": 3000.0, "maxSoc": 90.0}]
    spec = {"devices": [foxess("dev_f", groups=rows, max_groups=8)], "oemQuotas": {"dailyCalls": 1440.0}}
    spec["devices"][0]["scheduler"]["maxGroupCount"] = 8.0
    reply = await sim.call("POST", "/_sim/tenants", key=None, json_body=spec)
    assert reply.status == 201, reply.body
    tenant = Api(sim.client, reply.body["apiKey"])
    truth = await tenant.truth("dev_f")
    assert truth["scheduler"]["maxGroupCount"] == 8 and truth["scheduler"]["groups"][0]["fdPwr"] == 3000
    reply = await tenant.call("POST", "/_sim/devices/dev_f/faults", json_body={"kind": "transient", "times": 139.0})
    assert reply.status == 200 and reply.body["faults"] == [{"kind": "transient", "remaining": 139}]
    for bad in (1.5, True, "2"):
        reply = await tenant.call("POST", "/_sim/devices/dev_f/faults", json_body={"kind": "transient", "times": bad})
        assert reply.status == 400, bad


async def test_scheduler_write_rejects_null_enabled_and_an_empty_owner(api: Api) -> None:
    # negative_data_rejection: `{"enabled": null}` was accepted as "leave the flag"; and the
    # server's owner limits (1..64 characters) were missing from the spec.
    for body in ({"enabled": None, "groups": []}, {"owner": "", "groups": []}, {"owner": "x" * 65, "groups": []}):
        reply = await api.call("PUT", "/_sim/devices/dev_fox/scheduler", json_body=body)
        assert reply.status == 400 and reply.code == "INVALID_REQUEST", body
        assert not load_control().schema_validator("/components/schemas/SchedulerWrite").is_valid(body)


async def test_wall_clock_times_take_ascii_digits_in_spec_and_server(api: Api) -> None:
    # The spec's `\d` let a generator send Arabic-Indic digits the server's [0-9] refused.
    row = {"start": "\u0662\u0662:00", "end": "23:59", "workMode": "SelfUse"}
    assert not load_control().schema_validator("/components/schemas/GroupSpec").is_valid(row)
    reply = await api.call("PUT", "/_sim/devices/dev_fox/scheduler", json_body={"groups": [row]})
    assert reply.status == 400


async def test_a_row_read_back_can_be_written_again(api: Api) -> None:
    # GroupView shows `actionId` on platform rows; GroupSpec now documents it, as the server takes it.
    row = {"start": "22:00", "end": "23:59", "workMode": "SelfUse", "owner": "amps", "actionId": "act_x"}
    assert load_control().schema_validator("/components/schemas/GroupSpec").is_valid(row)
    reply = await api.call("PUT", "/_sim/devices/dev_fox/scheduler", json_body={"groups": [row]})
    assert reply.status == 200 and reply.body["scheduler"]["groups"][0]["actionId"] == "act_x"


# ---- control API: the clock ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"by": "90m", "to": None}, {"by": None}, {"to": None}, {"by": "1.555h"}, {"by": "123456d"}, {"by": "1d1d1d1d1d"},
     {"by": "\u0663m"}, {"to": 1778227200}, {"to": "1778227200"}, {"to": "2026-05-09"}],
)
async def test_advance_takes_exactly_what_its_schema_describes(api: Api, body: dict[str, Any]) -> None:
    # negative_data_rejection: `{"by": "90m", "to": null}` advanced the clock, `1.555h` (three
    # decimals) and six-digit counts parsed, numbers passed as instants.
    reply = await api.call("POST", "/_sim/clock/advance", json_body=body)
    assert reply.status == 400 and reply.code == "INVALID_REQUEST", (body, reply.body)
    assert not _with_formats("/components/schemas/AdvanceRequest").is_valid(body)
    assert (await api.call("GET", "/_sim/clock")).body["now"] == "2026-05-08T08:00:00.000Z"


@pytest.mark.parametrize("body", [{"by": "99999d"}, {"by": "401d"}, {"to": "2408-11-10T19:18:10Z"}, {"to": "2199-12-31T23:59:59Z"}])
async def test_a_well_formed_step_the_clock_cannot_take_is_422(api: Api, body: dict[str, Any]) -> None:
    # positive_data_acceptance: a step the schema allows but the simulator will not take was a 400.
    assert load_control().schema_validator("/components/schemas/AdvanceRequest").is_valid(body)
    reply = await api.call("POST", "/_sim/clock/advance", json_body=body)
    assert reply.status == 422 and reply.code == "CLOCK_OUT_OF_RANGE", reply.body


async def test_steps_with_up_to_four_parts_and_two_decimals_work(api: Api) -> None:
    assert (await api.advance(by="1d1h1m1.5s"))["now"] == "2026-05-09T09:01:01.500Z"
    assert (await api.advance(by="0.01s"))["now"] == "2026-05-09T09:01:01.510Z"
    assert (await api.advance(by="400d"))["now"] == "2027-06-13T09:01:01.510Z"


# ---- the simulated battery ----------------------------------------------------------------------


async def test_a_huge_battery_at_a_tiny_power_can_be_read(sim: Api) -> None:
    # not_a_server_error (500) from a fleet of extreme but valid devices: the instant a 1000 kWh
    # battery at 1e-300 kW reaches its limit does not fit in a datetime.
    tenant = await sim.tenant([
        {"id": "dev_slow", "profile": "foxess", "timeZone": "Pacific/Chatham", "timeZoneKnown": True,
         "battery": {"capacityKwh": 1000, "soc": 50, "maxPowerKw": 1e-300}},
        {"id": "dev_speck", "profile": "direct", "timeZone": "Pacific/Kiritimati", "timeZoneKnown": True,
         "battery": {"capacityKwh": 5e-324, "soc": 0, "maxPowerKw": 100}},
    ])
    for device_id in ("dev_slow", "dev_speck"):
        reply = await tenant.push(device_id, "charge")
        assert reply.status == 202, reply.body
    await tenant.advance(by="2h")
    listed = await tenant.call("GET", "/battery")
    assert listed.status == 200
    levels = {d["id"]: d["state"]["level"] for d in listed.body["devices"]}
    assert levels["dev_slow"] == 50.0 and levels["dev_speck"] == 100.0
    assert (await tenant.call("GET", "/_sim/devices")).status == 200


# ---- the HTTP layer -----------------------------------------------------------------------------


async def test_a_long_query_string_is_answered_in_the_envelope(api: Api) -> None:
    # content_type_conformance (soak, seed 14): a query of a few hundred repeated parameters ran
    # past aiohttp's 8190-byte request-line limit, and its parser answered a text/plain 400 before
    # the error middleware could see the request.
    query = "&".join(f"limit=%C2%A6{n}" for n in range(2000))  # about 30 KB
    reply = await api.call("GET", f"/actions?{query}")
    assert reply.status == 400 and reply.code == "INVALID_REQUEST"
    plain = "&".join(["deviceId=dev_fox"] * 3000) + "&limit=5"
    reply = await api.call("GET", f"/actions?{plain}")
    assert reply.status == 200 and reply.body["limit"] == 5


async def test_a_long_path_and_a_long_header_are_answered_in_the_envelope(api: Api) -> None:
    reply = await api.call("GET", "/battery/" + "d" * 20_000)
    assert reply.status == 404 and reply.code == "DEVICE_NOT_FOUND"
    reply = await api.call("GET", "/battery", key="sk_test_" + "x" * 20_000)
    assert reply.status == 401 and reply.code == "INVALID_API_KEY"
