"""Recording what each device looked like after every step, for the HTML timeline.

After each step the runner reads the tenant's virtual clock (`GET /_sim/clock`), each device's
OEM-side truth (`GET /_sim/devices/{id}`: native rows, flag, SoC, warnings) and its actions
(`GET /actions?deviceId=...`). These are ordinary requests through the spec-checked client, so
the recording is validated like everything else. Conflicts and failures seen in the steps' own
replies become markers. The result is :mod:`contracts.timeline` data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amps_sim.contracts.exchange import Exchange
from amps_sim.contracts.results import StepRecord
from amps_sim.contracts.timeline import DeviceSample, DeviceTimeline, Marker, ScenarioTimeline, parse_instant
from amps_sim.contracts.transport import SpecCheckedClient

LIST_PAGE = 50  # the largest page GET /actions serves

class TimelineRecorder:
    """Reads the truth after each step and folds it into a :class:`ScenarioTimeline`."""

    def __init__(self, client: SpecCheckedClient, key: str, device_ids: list[str]) -> None:
        self.client = client
        self.key = key
        self.timeline = ScenarioTimeline({d: DeviceTimeline(d) for d in device_ids})
        self._failed_seen: set[str] = set()
        self._drift_seen: set[str] = set()

    async def _get(self, path: str, into: list[Exchange], query: dict[str, Any] | None = None) -> Any:
        exchange = await self.client.send("GET", path, key=self.key, purpose="record", query=query)
        into.append(exchange)
        return exchange.body if exchange.status == 200 else None

    async def record(self, step: StepRecord | None) -> list[Exchange]:
        """Sample every device now; returns the exchanges made (the caller files them under the step)."""
        made: list[Exchange] = []
        index = step.index if step is not None else -1
        clock = await self._get("/_sim/clock", made)
        now = parse_instant(clock.get("now")) if isinstance(clock, dict) else None
        if now is None:
            return made
        self.timeline.clock.append((index, now))
        if step is not None:
            step.clock = clock["now"]
        for device_id, lane in self.timeline.devices.items():
            view = await self._get(f"/_sim/devices/{device_id}", made)
            if isinstance(view, dict):
                self._sample(lane, view, now, index)
            await self._list_actions(lane, device_id, made, index)
            if step is not None:
                self._step_markers(lane, step, now)
        return made

    async def _list_actions(self, lane: DeviceTimeline, device_id: str, made: list[Exchange], index: int) -> None:
        """Every action of the device, page by page (the API pages at most 50, newest first)."""
        records: list[Any] = []
        while True:
            query = {"deviceId": device_id, "limit": LIST_PAGE, "offset": len(records)}
            listed = await self._get("/actions", made, query)
            page = listed.get("actions") if isinstance(listed, dict) else None
            if not isinstance(page, list) or not page:
                break
            records.extend(page)
            total = listed.get("total") if isinstance(listed, dict) else None
            if not isinstance(total, int) or len(records) >= total:
                break
        # Oldest first into the lane, so its markers keep the order the actions were created in.
        self._actions(lane, list(reversed(records)), index)

    def _sample(self, lane: DeviceTimeline, view: dict[str, Any], now: datetime, index: int) -> None:
        lane.time_zone = view.get("timeZone") or lane.time_zone
        scheduler: dict[str, Any] | None = view["scheduler"] if isinstance(view.get("scheduler"), dict) else None
        battery: dict[str, Any] = view["battery"] if isinstance(view.get("battery"), dict) else {}
        warnings = [w for w in view.get("warnings") or [] if isinstance(w, dict)]
        lane.samples.append(
            DeviceSample(
                at=now,
                step=index,
                flag=scheduler.get("enabled") if scheduler else None,
                groups=[g for g in (scheduler.get("groups") or []) if isinstance(g, dict)] if scheduler else [],
                soc=battery.get("soc") if isinstance(battery.get("soc"), (int, float)) else None,
                mode=battery.get("currentMode"),
                warnings=warnings,
            )
        )
        for warning in warnings:
            key = f"{warning.get('kind')}:{warning.get('actionId')}"
            at = parse_instant(warning.get("effectiveStart"))
            if key not in self._drift_seen and at is not None:
                self._drift_seen.add(key)
                minutes = warning.get("driftMinutes")
                lane.markers.append(Marker(at, "drift", f"drift {minutes:+d} min" if isinstance(minutes, int) else "drift", index))

    def _actions(self, lane: DeviceTimeline, records: list[Any], index: int) -> None:
        for record in records:
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                continue
            lane.actions[record["id"]] = record
            if record.get("state") == "failed" and record["id"] not in self._failed_seen:
                self._failed_seen.add(record["id"])
                at = parse_instant(record.get("completedAt")) or parse_instant(record.get("updatedAt"))
                if at is not None:
                    lane.markers.append(Marker(at, "failure", f"{record.get('errorCode') or 'failed'}", index))

    @staticmethod
    def _step_markers(lane: DeviceTimeline, step: StepRecord, now: datetime) -> None:
        for exchange in step.own_exchanges:
            touches = f"/{lane.device_id}" in exchange.bare_path or f"deviceId={lane.device_id}" in exchange.path
            if touches and exchange.status == 409 and isinstance(exchange.body, dict):
                error = exchange.body.get("error") or {}
                details = error.get("details") or {}
                reason = details.get("reason") if isinstance(details, dict) else None
                label = str(error.get("code", "409")) + (f" · {reason}" if reason else "")
                lane.markers.append(Marker(now, "conflict", label, step.index))
            if touches and exchange.violations:
                lane.markers.append(Marker(now, "violation", f"spec: {exchange.violations[0].rule}", step.index))
