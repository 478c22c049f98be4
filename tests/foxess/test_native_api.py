"""The FoxESS Open API under /foxess: envelope, signature, keys and device reads, through HTTP."""

from __future__ import annotations

import hashlib

from amps_sim.simulator.foxess.signature import sign
from tests.conftest import Api, direct
from tests.foxess.conftest import DEVICE_ID, SERIAL, NativeClient, fox_device, oem_key, v3_group


# ------------------------------------------------------------------------------- envelope
async def test_unknown_path_and_wrong_method_answer_200_with_40257(native: NativeClient) -> None:
    unknown = await native.post("/op/v0/device/nothing", {})
    assert unknown.body == {"errno": 40257, "msg": unknown.body["msg"], "result": None}
    assert "unknown path" in unknown.body["msg"]
    wrong = await native.call("GET", "/op/v0/device/list")
    assert wrong.errno == 40257
    bare = await native.call("GET", "")
    assert bare.errno == 40257


async def test_malformed_bodies_are_40257(native: NativeClient) -> None:
    path = "/op/v0/device/list"
    assert (await native.post(path, raw=b"{not json")).errno == 40257
    assert (await native.post(path, raw=b"[1, 2]")).errno == 40257
    assert (await native.post(path, {"pageSize": 10, "colour": "red"})).errno == 40257
    assert (await native.post(path, {"pageSize": 0})).errno == 40257


async def test_error_message_table_needs_no_signature(native: NativeClient) -> None:
    reply = await native.call("GET", "/c/v0/errors/message", headers={"token": "", "lang": "en"})
    assert reply.errno == 0
    table = reply.result["messages"]["en"]
    for errno in ("40256", "40257", "40400", "40402", "41200", "41203", "42023", "44096"):
        assert table[errno]


# ------------------------------------------------------------------------------ signature
async def test_signature_is_md5_over_path_token_timestamp_with_literal_backslash_separators() -> None:
    text = "/op/v0/device/list" + "\\r\\n" + "tok" + "\\r\\n" + "1700000000000"
    assert len("\\r\\n") == 4
    assert sign("/op/v0/device/list", "tok", "1700000000000") == hashlib.md5(text.encode()).hexdigest()


async def test_bad_signatures_are_40256(native: NativeClient) -> None:
    path = "/op/v0/device/list"
    good = native.headers(path)
    crlf = hashlib.md5(f"{path}\r\n{native.token}\r\n{native.timestamp}".encode()).hexdigest()
    cases = {
        "missing signature": {k: v for k, v in good.items() if k != "signature"},
        "missing timestamp": {k: v for k, v in good.items() if k != "timestamp"},
        "missing token": {k: v for k, v in good.items() if k != "token"},
        "wrong": {**good, "signature": "0" * 32},
        "upper-case hex": {**good, "signature": good["signature"].upper()},
        "real CR LF separators": {**good, "signature": crlf},
        "signed with the prefix": {**good, "signature": sign("/foxess" + path, native.token, native.timestamp)},
        "signed with the query": native.headers(path + "?x=1"),
        "timestamp not a number": {**good, "timestamp": "soon", "signature": sign(path, native.token, "soon")},
    }
    for name, headers in cases.items():
        reply = await native.post(path, {}, headers=headers)
        assert reply.errno == 40256, name
        assert reply.result is None


async def test_header_names_are_case_insensitive(native: NativeClient) -> None:
    path = "/op/v0/device/list"
    shouting = {name.upper(): value for name, value in native.headers(path).items()}
    assert (await native.post(path, {}, headers=shouting)).errno == 0


async def test_a_wrong_signature_never_writes(native: NativeClient, tenant: Api) -> None:
    path = "/op/v3/device/scheduler/enable"
    headers = {**native.headers(path), "signature": sign(path, native.token, "1")}
    reply = await native.post(path, {"deviceSN": SERIAL, "groups": [v3_group("01:00", "01:59")]}, headers=headers)
    assert reply.errno == 40256
    flag = "/op/v1/device/scheduler/set/flag"
    headers = {**native.headers(flag), "signature": "f" * 32}
    assert (await native.post(flag, {"deviceSN": SERIAL, "enable": 1}, headers=headers)).errno == 40256
    truth = await tenant.truth(DEVICE_ID)
    assert truth["scheduler"]["groups"] == [] and truth["scheduler"]["enabled"] is False
    count = await native.get("/op/v0/user/getAccessCount")
    assert count.result == {"total": 1440, "remaining": 1440}  # refused calls are not counted


async def test_unknown_token_is_41809(native: NativeClient) -> None:
    stranger = NativeClient(native.client, "00000000-0000-0000-0000-000000000000")
    assert (await stranger.post("/op/v0/device/list", {})).errno == 41809


# ----------------------------------------------------------------------------------- keys
async def test_oem_key_scopes_tenant_and_devices(sim: Api) -> None:
    api = await sim.tenant([fox_device(), {**fox_device(), "id": "dev_other", "serialNumber": "OTHER0000000001"}])
    mine = NativeClient(api.client, await oem_key(api))
    listed = await mine.post("/op/v0/device/list", {"pageSize": 100, "currentPage": 1})
    assert [row["deviceSN"] for row in listed.result["data"]] == [SERIAL] and listed.result["total"] == 1
    assert (await mine.schedule(sn="OTHER0000000001")).errno == 40257
    # Another tenant's key never reaches this tenant's devices, even with a serial it knows.
    other = await sim.tenant([fox_device()])
    theirs = NativeClient(api.client, await oem_key(other))
    await theirs.write([v3_group("01:00", "01:59")])
    assert (await api.truth(DEVICE_ID))["scheduler"]["groups"] == []


async def test_oem_key_refusals(sim: Api) -> None:
    api = await sim.tenant([fox_device(), direct()])
    missing = await api.call("POST", "/_sim/oem-keys", json_body={"party": "homeowner_app", "devices": ["dev_none"]})
    assert missing.status == 404 and missing.code == "DEVICE_NOT_FOUND"
    no_api = await api.call("POST", "/_sim/oem-keys", json_body={"party": "third_party", "devices": ["dev_direct"]})
    assert no_api.status == 422 and no_api.code == "NATIVE_API_UNAVAILABLE"
    assert no_api.details == {"deviceId": "dev_direct", "profile": "direct"}
    bad_party = await api.call("POST", "/_sim/oem-keys", json_body={"party": "amps", "devices": [DEVICE_ID]})
    assert bad_party.status == 400 and bad_party.code == "INVALID_REQUEST"
    empty = await api.call("POST", "/_sim/oem-keys", json_body={"party": "third_party", "devices": []})
    assert empty.status == 400
    anonymous = await api.call("POST", "/_sim/oem-keys", key=None, json_body={"party": "third_party", "devices": [DEVICE_ID]})
    assert anonymous.status == 401


async def test_keys_survive_reset_but_counts_do_not(native: NativeClient, tenant: Api) -> None:
    await native.post("/op/v0/device/list", {})
    assert (await native.get("/op/v0/user/getAccessCount")).result["remaining"] == 1439
    assert (await tenant.call("POST", "/_sim/reset")).status == 200
    assert (await native.get("/op/v0/user/getAccessCount")).result["remaining"] == 1440
    assert (await native.schedule()).errno == 0


async def test_serial_number_is_the_native_device_sn(sim: Api) -> None:
    api = await sim.tenant([fox_device(), {**fox_device(), "id": "dev_plain", "serialNumber": None}])
    plain = (await api.truth("dev_plain"))["serialNumber"]
    client = NativeClient(api.client, await oem_key(api, devices=["dev_plain"]))
    assert (await client.schedule(sn=plain)).errno == 0
    assert (await client.schedule(sn=SERIAL)).errno == 40257  # not on this key


# ---------------------------------------------------------------------- start-up reads
async def test_device_list_detail_generation_and_real_time(native: NativeClient) -> None:
    listed = await native.post("/op/v0/device/list", {"pageSize": 100, "currentPage": 1})
    row = listed.result["data"][0]
    assert row["deviceSN"] == SERIAL and row["deviceType"] == "H1-5.0-E" and row["status"] == 1
    detail = await native.get("/op/v1/device/detail", sn=SERIAL)
    assert detail.result["deviceSN"] == SERIAL and detail.result["function"] == {"scheduler": True}
    assert (await native.get("/op/v1/device/detail", sn="NOPE")).errno == 40257
    assert (await native.get("/op/v1/device/detail", sn=SERIAL, extra="1")).errno == 40257
    generation = await native.get("/op/v0/device/generation", sn=SERIAL)
    assert set(generation.result) == {"today", "month", "cumulative"}
    # 09:00 BST: the solar table's first nine hours.
    assert generation.result["today"] == 1.4
    real = await native.post("/op/v1/device/real/query", {"sns": [SERIAL], "variables": ["SoC", "workMode"]})
    assert real.result[0]["deviceSN"] == SERIAL
    assert real.result[0]["time"] == "2026-05-08 09:00:00 BST+0100"
    assert [(d["variable"], d["value"]) for d in real.result[0]["datas"]] == [("SoC", 50), ("workMode", "SelfUse")]
    assert (await native.post("/op/v1/device/real/query", {"sns": [SERIAL], "variables": ["colour"]})).errno == 40257
    assert (await native.post("/op/v1/device/real/query", {"sns": []})).errno == 40257


async def test_access_count_counts_every_admitted_call(native: NativeClient) -> None:
    for _ in range(3):
        await native.schedule()
    await native.schedule(sn="NOPE")  # refused before admission: not counted
    reply = await native.get("/op/v0/user/getAccessCount")
    assert reply.result == {"total": 1440, "remaining": 1437}
