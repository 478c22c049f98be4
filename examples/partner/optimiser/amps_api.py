"""A small client of the Amps public API (the part this optimiser uses), on the standard library."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class AmpsApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class AmpsApi:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"x-api-key": self.api_key, "Content-Type": "application/json"}
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as refused:
            error = json.loads(refused.read())["error"]
            raise AmpsApiError(refused.code, error["code"], error["message"]) from None

    def battery(self, device_id: str) -> dict[str, Any]:
        return self._call("GET", f"/battery/{device_id}")

    def push(self, device_id: str, action: dict[str, Any], on_conflict: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"action": action}
        if on_conflict:
            body["onConflict"] = on_conflict
        return self._call("POST", f"/battery/{device_id}", body)

    def action(self, action_id: str) -> dict[str, Any]:
        return self._call("GET", f"/actions/{action_id}")
