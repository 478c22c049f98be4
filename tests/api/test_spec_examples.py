"""Item 3 of issue 12: every response example in openapi.yaml and the control spec is what the
simulator answers.

Each example has a recipe: the requests that make the simulator give that response, through the
real app (every reply is also checked against the spec by the client). The reply must carry the
example's status and, with ids, keys, instants and latencies masked, the example's body. An
example without a recipe fails, so a new example cannot go untested and an old one cannot drift.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any, Awaitable, Callable, Iterator

import pytest

from amps_sim.contracts.spec import ResponseValidator, load_control, load_public
from tests.conftest import Api, Reply, direct, foxess

Recipe = Callable[[Api], Awaitable[Reply]]
RECIPES: dict[str, Recipe] = {}

_MASKS = [
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})"), "<instant>"),
    (re.compile(r"\bact_[A-Za-z0-9_]+"), "<action id>"),
    (re.compile(r"\breq_[A-Za-z0-9]{8}\b"), "<request id>"),
    (re.compile(r"\bsk_(?:test|live)_[A-Za-z0-9]+"), "<api key>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<oem key>"),
]
_MASKED_KEYS = {"latencyMs": "<ms>"}


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _MASKED_KEYS[k] if k in _MASKED_KEYS else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in _MASKS:
            value = pattern.sub(replacement, value)
    return value


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _examples(name: str, spec: ResponseValidator) -> Iterator[tuple[str, int, Any]]:
    """(label, status, example value) for every response example; a shared one once per status."""
    document = spec.document
    seen: set[tuple[str, str]] = set()
    for method, template, operation in spec.operations():
        for status, response in operation["responses"].items():
            owner = f"{method} {template} {status}"
            if "$ref" in response:
                owner = response["$ref"].rsplit("/", 1)[-1]
                response = document["components"]["responses"][owner]
            for media in (response.get("content") or {}).values():
                for example_name, example in (media.get("examples") or {}).items():
                    label = f"{name}: {owner} {example_name}"
                    if "$ref" in example:
                        label = f"{name}: {example['$ref'].rsplit('/', 1)[-1]}"
                        example = document["components"]["examples"][example["$ref"].rsplit("/", 1)[-1]]
                    if (label, status) not in seen:
                        seen.add((label, status))
                        yield label, int(status), example["value"]


def _collect() -> dict[str, tuple[set[int], Any]]:
    found: dict[str, tuple[set[int], Any]] = {}
    for name, spec in (("public", load_public()), ("control", load_control())):
        for label, status, value in _examples(name, spec):
            found.setdefault(label, (set(), value))[0].add(status)
    return found


EXAMPLES = _collect()


def recipe(*labels: str) -> Callable[[Recipe], Recipe]:
    def register(function: Recipe) -> Recipe:
        for label in labels:
            assert label not in RECIPES, label
            RECIPES[label] = function
        return function
    return register


@pytest.mark.parametrize("label", sorted(EXAMPLES))
async def test_the_simulator_answers_the_example(sim: Api, label: str) -> None:
    assert label in RECIPES, f"no recipe produces the example {label!r}: add one to {__name__}"
    statuses, example = EXAMPLES[label]
    reply = await RECIPES[label](sim)
    assert reply.status in statuses, (label, reply.body)
    expected = mask(json.loads(json.dumps(example)))
    assert mask(reply.body) == expected, f"{label}\nsimulator: {json.dumps(reply.body, indent=1)}"


def test_every_recipe_has_its_example() -> None:
    assert sorted(set(RECIPES) - set(EXAMPLES)) == []


# ---- recipes: the public API ----------------------------------------------------------------------
DEV = "dev_abc123"
WINDOW = {"start": "2026-05-09T22:00:00Z", "end": "2026-05-10T05:00:00Z"}


def docs_device(**overrides: Any) -> dict[str, Any]:
    device = foxess(DEV, **overrides)
    device["battery"] = {"capacityKwh": 10.4, "soc": overrides.get("soc", 60), "maxPowerKw": 10.5}
    return device


async def docs_tenant(sim: Api, *devices: dict[str, Any], now: str = "2026-05-08T08:00:00Z") -> Api:
    return await sim.tenant(list(devices) or [docs_device()], now=now)


@recipe("public: Unauthorized missing_key")
async def _missing_key(sim: Api) -> Reply:
    return await sim.call("GET", f"/battery/{DEV}", key=None)


@recipe("public: Unauthorized unknown_key")
async def _unknown_key(sim: Api) -> Reply:
    return await sim.call("GET", "/battery", key="sk_live_notakey")


@recipe("public: DeviceNotFound unknown_device")
async def _unknown_device(sim: Api) -> Reply:
    return await (await docs_tenant(sim)).call("GET", "/battery/dev_missing")


@recipe("public: ActionNotFound unknown_action")
async def _unknown_action(sim: Api) -> Reply:
    return await (await docs_tenant(sim)).call("GET", "/actions/act_missing")


@recipe("public: InvalidRequest missing_command")
async def _missing_command(sim: Api) -> Reply:
    return await (await docs_tenant(sim)).call("POST", f"/battery/{DEV}", json_body={"action": {}})


@recipe("public: PayloadTooLarge too_large")
async def _too_large(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    body = io.BytesIO(b'{"pad": "' + b"x" * (1024 * 1024) + b'"}')
    return await api.call("POST", f"/battery/{DEV}", data=body, headers={"Content-Type": "application/json"})


@recipe("public: UnsupportedMediaType form_body")
async def _form_body(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    return await api.call("POST", f"/battery/{DEV}", data="command=charge",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})


@recipe("public: GET /battery 200 one_battery")
async def _one_battery(sim: Api) -> Reply:
    api = await docs_tenant(sim, docs_device(soc=40), direct("dev_direct_7", zone="Europe/London", soc=100))
    await api.push(DEV, "charge", parameters={"target": {"value": 90, "unit": "percent"}})
    await api.advance(by="30m")
    return await api.call("GET", "/battery")


@recipe("public: DeviceReadValue")
async def _device_read(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    booked = await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"}}, **WINDOW)
    await api.advance(to="2026-05-08T11:32:00Z")
    await api.cancel(booked.body["actionId"])
    return await api.call("GET", f"/battery/{DEV}")


@recipe("public: POST /battery/{deviceId} 202 acknowledged")
async def _acknowledged(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:01Z")
    return await api.push(DEV, "discharge", parameters={"target": {"value": 30, "unit": "percent"}})


@recipe("public: POST /battery/{deviceId} 202 scheduled")
async def _scheduled(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    return await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"}}, **WINDOW)


@recipe("public: POST /battery/{deviceId} 202 queued")
async def _queued(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"}}, **WINDOW)
    await api.advance(to="2026-05-08T12:00:02Z")
    return await api.push(DEV, "auto.balanced", on_conflict="queue_after")


@recipe("public: POST /battery/{deviceId} 409 pending_conflict")
async def _pending_conflict(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"}}, **WINDOW)
    await api.advance(to="2026-05-08T12:00:00Z")
    return await api.push(DEV, "discharge", parameters={"target": {"value": 30, "unit": "percent"}})


@recipe("public: POST /battery/{deviceId} 409 in_flight")
async def _in_flight(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:02Z")
    await api.push(DEV, "charge")
    await api.advance(by="1s")
    return await api.push(DEV, "discharge", on_conflict="cancel_and_replace",
                          parameters={"target": {"value": 30, "unit": "percent"}})


@recipe("public: POST /battery/{deviceId} 409 open_ended")
async def _open_ended(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    await api.push(DEV, "auto.balanced", start="2026-05-08T13:00:00Z")
    await api.advance(to="2026-05-08T12:05:00Z")
    return await api.push(DEV, "charge", on_conflict="queue_after")


@recipe("public: POST /battery/{deviceId} 409 foreign_rows")
async def _foreign_rows(sim: Api) -> Reply:
    row = {"start": "22:30", "end": "23:59", "workMode": "ForceCharge", "fdPwr": 3000, "maxSoc": 100}
    api = await docs_tenant(sim, docs_device(enabled=True, groups=[row]), now="2026-05-08T12:20:00Z")
    return await api.push(DEV, "charge", start="2026-05-09T22:00:00+01:00", end="2026-05-10T05:00:00+01:00")


@recipe("public: POST /battery/{deviceId} 409 blocking_imperative")
async def _blocking_imperative(sim: Api) -> Reply:
    row = {"start": "12:00", "end": "14:59", "workMode": "SelfUse"}
    api = await docs_tenant(sim, docs_device(enabled=True, groups=[row]), now="2026-05-08T12:15:00Z")
    return await api.push(DEV, "charge", parameters={"target": {"value": 95, "unit": "percent"}})


@recipe("public: POST /battery/{deviceId} 409 slots_full")
async def _slots_full(sim: Api) -> Reply:
    rows = [{"start": f"{h:02d}:00", "end": f"{h:02d}:59", "workMode": "SelfUse"} for h in range(0, 16, 2)]
    api = await docs_tenant(sim, docs_device(enabled=True, groups=rows), now="2026-05-08T12:25:00Z")
    return await api.push(DEV, "charge", start="2026-05-08T18:00:00+01:00", end="2026-05-08T19:00:00+01:00")


@recipe("public: POST /battery/{deviceId} 422 utc_window")
async def _utc_window(sim: Api) -> Reply:
    api = await docs_tenant(sim, docs_device(known=False), now="2026-05-08T12:30:00Z")
    return await api.push(DEV, "charge", **WINDOW)


@recipe("public: POST /battery/{deviceId} 422 out_of_range")
async def _out_of_range(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    return await api.push(DEV, "discharge", parameters={"target": {"value": 5, "unit": "percent"}})


@recipe("public: POST /battery/{deviceId} 422 wrong_unit")
async def _wrong_unit(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    return await api.push(DEV, "charge", parameters={"power": {"value": 3000, "unit": "w"}})


@recipe("public: POST /battery/{deviceId} 422 start_in_past")
async def _start_in_past(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:33:00Z")
    return await api.push(DEV, "charge", start="2026-05-08T12:00:00Z")


@recipe("public: GET /actions 200 one_page")
async def _one_page(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"}}, **WINDOW)
    await api.advance(to="2026-05-08T11:32:00Z")
    await api.push(DEV, "discharge", on_conflict="cancel_and_replace",
                   parameters={"target": {"value": 30, "unit": "percent"}}, **WINDOW)
    return await api.call("GET", f"/actions?deviceId={DEV}")


@recipe("public: FailedActionValue")
async def _failed(sim: Api) -> Reply:
    rows = [{"start": "00:30", "end": "04:29", "workMode": "ForceCharge", "fdPwr": 3000, "maxSoc": 95}]
    api = await docs_tenant(sim, docs_device(enabled=True, groups=rows), now="2026-05-08T12:10:00Z")
    pushed = await api.push(DEV, "charge", parameters={"target": {"value": 95, "unit": "percent"}})
    await api.advance(by="32s")
    return await api.call("GET", f"/actions/{pushed.body['actionId']}")


async def _cancelled_reply(sim: Api) -> tuple[Api, Reply]:
    api = await docs_tenant(sim)
    booked = await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"}}, **WINDOW)
    await api.advance(to="2026-05-08T11:32:00Z")
    return api, await api.cancel(booked.body["actionId"])


@recipe("public: CancelledActionValue")
async def _cancelled(sim: Api) -> Reply:
    api, cancelled = await _cancelled_reply(sim)
    read = await api.call("GET", f"/actions/{cancelled.body['id']}")
    assert read.body == cancelled.body  # the cancel reply is the record, as a read gives it
    return read


@recipe("public: GET /actions/{actionId} 200 windowed_completed")
async def _windowed_completed(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    pushed = await api.push(DEV, "charge", parameters={"target": {"value": 100, "unit": "percent"},
                                                       "power": {"value": 3.6, "unit": "kw"}}, **WINDOW)
    await api.advance(to="2026-05-09T22:00:05Z")
    return await api.call("GET", f"/actions/{pushed.body['actionId']}")


@recipe("public: GET /actions/{actionId} 200 dispatch_time_overlap")
async def _dispatch_time_overlap(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T09:00:00Z")
    pushed = await api.push(DEV, "discharge", parameters={"target": {"value": 30, "unit": "percent"}},
                            start="2026-05-08T17:00:00Z", end="2026-05-08T19:00:00Z")
    await api.write_rows(DEV, [{"start": "18:30", "end": "18:59", "workMode": "Feedin"}], enabled=True)
    await api.advance(to="2026-05-08T17:00:05Z")
    return await api.call("GET", f"/actions/{pushed.body['actionId']}")


@recipe("public: POST /actions/{actionId}/cancel 409 in_flight")
async def _not_cancellable(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T11:32:00Z")
    pushed = await api.push(DEV, "charge")
    return await api.cancel(pushed.body["actionId"])


# ---- recipes: the control API -----------------------------------------------------------------------
@recipe("control: Unauthorized missing_key")
async def _control_missing_key(sim: Api) -> Reply:
    return await sim.call("GET", "/_sim/clock", key=None)


@recipe("control: InvalidRequest bad_duration")
async def _bad_duration(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/clock/advance", json_body={"by": "soon"})


@recipe("control: PayloadTooLarge too_large")
async def _control_too_large(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    body = io.BytesIO(b'{"id": "' + b"x" * (1024 * 1024) + b'"}')
    return await api.call("POST", "/_sim/devices", data=body, headers={"Content-Type": "application/json"})


@recipe("control: UnsupportedMediaType text_body")
async def _control_text_body(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/devices", data="id: dev_x", headers={"Content-Type": "text/plain"})


@recipe("control: DeviceNotFound unknown")
async def _control_unknown(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.call("GET", "/_sim/devices/dev_missing")


@recipe("control: GET /_sim/clock 200 virtual")
async def _clock(sim: Api) -> Reply:
    return await (await docs_tenant(sim, now="2026-05-08T12:00:00Z")).call("GET", "/_sim/clock")


@recipe("control: POST /_sim/clock/advance 200 advanced")
async def _advanced(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    await api.push(DEV, "charge", start="1h")
    return await api.call("POST", "/_sim/clock/advance", json_body={"by": "1.5h"})


@recipe("control: POST /_sim/clock/advance 422 backwards")
async def _backwards(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/clock/advance", json_body={"to": "2026-05-08T11:00:00Z"})


@recipe("control: POST /_sim/reset 200 reset")
async def _reset(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    await api.advance(by="2h")
    return await api.call("POST", "/_sim/reset")


@recipe("control: POST /_sim/tenants 201 created")
async def _tenant_created(sim: Api) -> Reply:
    return await sim.call("POST", "/_sim/tenants", key=None, json_body={})


@recipe("control: POST /_sim/tenants 409 duplicate")
async def _tenant_duplicate(sim: Api) -> Reply:
    return await sim.call("POST", "/_sim/tenants", key=None, json_body={"devices": [docs_device(), docs_device()]})


@recipe("control: POST /_sim/tenants 422 out_of_range")
async def _tenant_out_of_range(sim: Api) -> Reply:
    return await sim.call("POST", "/_sim/tenants", key=None,
                          json_body={"clock": {"mode": "virtual", "now": "2300-01-01T00:00:00Z"}})


@recipe("control: POST /_sim/oem-keys 201 created")
async def _oem_key(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/oem-keys", json_body={"party": "homeowner_app", "devices": [DEV]})


@recipe("control: POST /_sim/oem-keys 422 direct_device")
async def _oem_key_direct(sim: Api) -> Reply:
    api = await docs_tenant(sim, direct("dev_direct_7", zone="Europe/London"), now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/oem-keys", json_body={"party": "homeowner_app", "devices": ["dev_direct_7"]})


@recipe("control: GET /_sim/devices 200 one_device")
async def _one_device(sim: Api) -> Reply:
    api = await docs_tenant(sim, direct("dev_direct_7", zone="Europe/London", soc=100), now="2026-05-08T12:00:00Z")
    return await api.call("GET", "/_sim/devices")


@recipe("control: FoxessDeviceView")
async def _foxess_view(sim: Api) -> Reply:
    row = {"start": "22:30", "end": "23:59", "workMode": "ForceCharge", "fdPwr": 3000, "maxSoc": 100}
    device = docs_device(known=False, enabled=True, groups=[row], soc=55)
    api = await docs_tenant(sim, device, now="2026-05-08T12:00:00Z")
    await api.push(DEV, "discharge", parameters={"target": {"value": 30, "unit": "percent"}},
                   start="2026-05-08T18:00:00+02:00", end="2026-05-08T20:00:00+02:00")
    await api.advance(to="2026-05-08T16:00:05Z")
    await api.fault(DEV, "transient", 1)
    return await api.call("GET", f"/_sim/devices/{DEV}")


@recipe("control: POST /_sim/devices 409 duplicate")
async def _device_duplicate(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/devices", json_body=docs_device())


@recipe("control: POST /_sim/devices 422 overlap")
async def _device_overlap(sim: Api) -> Reply:
    api = await docs_tenant(sim, direct("dev_direct_7"), now="2026-05-08T12:00:00Z")
    rows = [{"start": "22:00", "end": "23:59", "workMode": "ForceCharge"}, {"start": "23:00", "end": "23:59", "workMode": "SelfUse"}]
    return await api.call("POST", "/_sim/devices", json_body=docs_device(groups=rows))


@recipe("control: POST /_sim/devices 422 unknown_zone")
async def _device_unknown_zone(sim: Api) -> Reply:
    api = await docs_tenant(sim, direct("dev_direct_7"), now="2026-05-08T12:00:00Z")
    return await api.call("POST", "/_sim/devices", json_body=docs_device(zone="Mars/Olympus"))


@recipe("control: ScheduleRejected overlap")
async def _scheduler_overlap(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    rows = [{"start": "22:00", "end": "23:59", "workMode": "ForceCharge"}, {"start": "23:00", "end": "23:59", "workMode": "SelfUse"}]
    return await api.write_rows(DEV, rows)


@recipe("control: POST /_sim/devices/{deviceId}/faults 200 pending")
async def _faults(sim: Api) -> Reply:
    api = await docs_tenant(sim, now="2026-05-08T12:00:00Z")
    return await api.fault(DEV, "oem_timeout", 2)


# ---- recipes: a hosted sandbox's limits (issue 13; `serve` options, set here on the running app) ---
def _limits(sim: Api) -> Any:
    from amps_sim.simulator.web.common import LIMITS

    return sim.client.server.app[LIMITS]


@recipe("public: RateLimited too_fast", "control: RateLimited too_fast")
async def _rate_limited(sim: Api) -> Reply:
    limits = _limits(sim)
    # A slow rate, so the second request is refused however long the host takes between the two.
    limits.requests_per_second, limits.burst = 0.5, 1
    api = await docs_tenant(sim)
    await api.call("GET", "/battery")
    return await api.call("GET", "/battery")


@recipe("public: POST /battery/{deviceId} 403 limit")
async def _action_limit(sim: Api) -> Reply:
    _limits(sim).max_actions = 2
    api = await docs_tenant(sim)
    for _ in range(2):
        await api.push(DEV, "charge", on_conflict="queue_after", parameters={"target": {"value": 80, "unit": "percent"}}, **WINDOW)
    return await api.push(DEV, "charge", on_conflict="queue_after", parameters={"target": {"value": 80, "unit": "percent"}}, **WINDOW)


@recipe("control: POST /_sim/devices 403 limit")
async def _device_limit(sim: Api) -> Reply:
    _limits(sim).max_devices = 2
    api = await docs_tenant(sim, docs_device(), direct("dev_direct_7"))
    return await api.call("POST", "/_sim/devices", json_body=direct("dev_third"))


@recipe("control: GET /_sim/tenants 200 own")
async def _own_tenant(sim: Api) -> Reply:
    api = await docs_tenant(sim)
    for _ in range(3):
        await api.push(DEV, "charge", on_conflict="queue_after", parameters={"target": {"value": 80, "unit": "percent"}}, **WINDOW)
    return await api.call("GET", "/_sim/tenants")


@recipe("control: GET /_sim/health 200 ok")
async def _health(sim: Api) -> Reply:
    return await sim.call("GET", "/_sim/health", key=None)


@recipe("control: DELETE /_sim/tenant 409 pinned")
async def _pinned(sim: Api) -> Reply:
    from amps_sim.simulator.web.common import TENANTS
    from amps_sim.simulator.world.tenants import TenantSpec

    # The world a server is started with (`amps-sim serve`) is pinned.
    sim.client.server.app[TENANTS].create(TenantSpec(), "sk_live_abc123xyz", pinned=True)
    return await sim.call("DELETE", "/_sim/tenant", key="sk_live_abc123xyz")
