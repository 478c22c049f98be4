"""Helpers for the FoxESS cloud tests: a signing native client beside the spec-checked Amps client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from amps_sim.simulator.foxess.signature import sign
from tests.conftest import Api, foxess

# 2026-05-08 is a Friday in BST (UTC+1).
DEVICE_ID = "dev_fox"
SERIAL = "60BH37202BFA097"


@dataclass
class NativeReply:
    status: int
    body: dict[str, Any]

    @property
    def errno(self) -> int:
        return self.body["errno"]

    @property
    def result(self) -> Any:
        return self.body["result"]


class NativeClient:
    """Signs like the real clients: MD5 over path, token and timestamp joined by a literal \\r\\n."""

    def __init__(self, client: Any, token: str, *, timestamp: str = "1778227200000") -> None:
        self.client = client
        self.token = token
        self.timestamp = timestamp

    def headers(self, path: str, **override: str) -> dict[str, str]:
        headers = {
            "token": self.token,
            "timestamp": self.timestamp,
            "signature": sign(path, self.token, self.timestamp),
            "lang": "en",
            "Content-Type": "application/json",
        }
        headers.update(override)
        return headers

    async def call(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None, raw: bytes | None = None) -> NativeReply:
        sent = headers if headers is not None else self.headers(path)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        async with self.client.request(method, "/foxess" + path, data=data, params=params, headers=sent) as resp:
            text = await resp.read()
            assert resp.status == 200, (resp.status, text)
            return NativeReply(resp.status, json.loads(text))

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> NativeReply:
        return await self.call("POST", path, body, **kwargs)

    async def get(self, path: str, **params: str) -> NativeReply:
        return await self.call("GET", path, params=params or None)

    # the calls a client makes most
    async def schedule(self, version: int = 3, sn: str = SERIAL) -> NativeReply:
        return await self.post(f"/op/v{version}/device/scheduler/get", {"deviceSN": sn})

    async def write(self, groups: list[dict[str, Any]], version: int = 3, sn: str = SERIAL, **extra: Any) -> NativeReply:
        return await self.post(f"/op/v{version}/device/scheduler/enable", {"deviceSN": sn, "groups": groups, **extra})

    async def flag(self, enable: int, version: int = 1, sn: str = SERIAL) -> NativeReply:
        return await self.post(f"/op/v{version}/device/scheduler/set/flag", {"deviceSN": sn, "enable": enable})


def fox_device(**kwargs: Any) -> dict[str, Any]:
    spec = foxess(DEVICE_ID, **kwargs)
    spec["serialNumber"] = SERIAL
    return spec


def v3_group(start: str, end: str, mode: str = "SelfUse", **extra: int) -> dict[str, Any]:
    (sh, sm), (eh, em) = (map(int, start.split(":")), map(int, end.split(":")))
    group: dict[str, Any] = {"startHour": sh, "startMinute": sm, "endHour": eh, "endMinute": em, "workMode": mode}
    if extra:
        group["extraParam"] = dict(extra)
    return group


async def oem_key(api: Api, party: str = "homeowner_app", devices: list[str] | None = None) -> str:
    reply = await api.call("POST", "/_sim/oem-keys", json_body={"party": party, "devices": devices or [DEVICE_ID]})
    assert reply.status == 201, reply.body
    return reply.body["apiKey"]


@pytest.fixture
async def tenant(sim: Api) -> Api:
    return await sim.tenant([fox_device()])


@pytest.fixture
async def native(tenant: Api) -> NativeClient:
    return NativeClient(tenant.client, await oem_key(tenant))
