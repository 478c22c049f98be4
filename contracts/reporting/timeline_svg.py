"""A picture per device over virtual time, as inline SVG: native rows by owner, the scheduler
flag, each platform action's states, the state of charge, and markers for conflicts, failures,
drift and spec violations.

Native rows are daily wall-clock ranges in the plant's zone, so each row is drawn at the
instants the plant's wall clock reaches it: that is where DST and drift become visible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from html import escape
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from amps_sim.contracts.timeline import DeviceSample, DeviceTimeline, parse_instant

OWNER_COLOURS = {"amps": "#2563eb", "homeowner_app": "#16a34a", "third_party": "#ea580c"}
_SPARE_COLOURS = ("#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4d7c0f")
STATE_COLOURS = {
    "scheduled": "#cbd5e1",
    "acknowledged": "#f59e0b",
    "completed": "#22c55e",
    "failed": "#dc2626",
    "cancelled": "#64748b",
}
MARKER_COLOURS = {"conflict": "#dc2626", "failure": "#b91c1c", "drift": "#7c3aed", "violation": "#db2777", "webhook": "#0891b2"}
_TICK_STEPS = [
    timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
]

WIDTH = 1120
LABEL_W = 170
RIGHT_PAD = 24
PLOT_W = WIDTH - LABEL_W - RIGHT_PAD
LANE_H = 22
GAP = 6


def owner_colour(owner: str) -> str:
    if owner in OWNER_COLOURS:
        return OWNER_COLOURS[owner]
    digest = int(hashlib.sha256(owner.encode()).hexdigest(), 16)
    return _SPARE_COLOURS[digest % len(_SPARE_COLOURS)]


def _zone(name: str | None) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(name) if name else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _minutes(hhmm: Any) -> int | None:
    try:
        hours, minutes = str(hhmm).split(":")
        return int(hours) * 60 + int(minutes)
    except ValueError:
        return None


def row_occurrences(row: dict[str, Any], zone: ZoneInfo | timezone, low: datetime, high: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The UTC spans in [low, high) during which the plant's wall clock is inside a daily row."""
    first, last = _minutes(row.get("start")), _minutes(row.get("end"))
    if first is None or last is None or last < first:
        return
    day: date = low.astimezone(zone).date() - timedelta(days=1)
    final = high.astimezone(zone).date() + timedelta(days=1)
    while day <= final:
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        # Wall-clock arithmetic: the row starts and ends at those local minutes on that date.
        begins = (midnight + timedelta(minutes=first)).astimezone(timezone.utc)
        ends = (midnight + timedelta(minutes=last + 1)).astimezone(timezone.utc)
        if ends > begins:
            span_low, span_high = max(begins, low), min(ends, high)
            if span_high > span_low:
                yield span_low, span_high
        day += timedelta(days=1)


@dataclass
class _Axis:
    start: datetime
    end: datetime

    @property
    def span(self) -> float:
        return max((self.end - self.start).total_seconds(), 1.0)

    def x(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.span
        return LABEL_W + max(0.0, min(1.0, offset)) * PLOT_W

    def ticks(self) -> list[datetime]:
        step = next((s for s in _TICK_STEPS if self.span / s.total_seconds() <= 9), _TICK_STEPS[-1])
        seconds = int(step.total_seconds())
        epoch = int(self.start.timestamp())
        first = epoch - epoch % seconds + (seconds if epoch % seconds else 0)
        return [datetime.fromtimestamp(t, timezone.utc) for t in range(first, int(self.end.timestamp()) + 1, seconds)]


def _text(x: float, y: float, content: str, *, size: int = 11, anchor: str = "start", colour: str = "#334155",
          weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{colour}" '
        f'font-weight="{weight}">{escape(content)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, *, title: str = "", opacity: float = 1.0,
          stroke: str | None = None, dash: bool = False, radius: float = 2) -> str:
    extra = f' stroke="{stroke}" stroke-width="1.2"' if stroke else ' stroke="#ffffff" stroke-width="0.8"'
    if dash:
        extra += ' stroke-dasharray="4 3"'
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1.5):.1f}" height="{h:.1f}" rx="{radius}" fill="{fill}" '
        f'fill-opacity="{opacity}"{extra}>{tip}</rect>'
    )


def _fitting(width: float, *labels: str) -> str | None:
    """The longest label that fits a bar of `width` px at 10 px type (about 6 px a character)."""
    for label in labels:
        if len(label) * 6.2 + 8 <= width:
            return label
    return None


def _short_id(action_id: str) -> str:
    return action_id if len(action_id) <= 12 else action_id[:4] + "…" + action_id[-5:]


def _fmt(moment: datetime, zone: ZoneInfo | timezone | None = None) -> str:
    local = moment.astimezone(zone or timezone.utc)
    return local.strftime("%m-%d %H:%M:%S") + ("" if zone is None else f" {local.tzname()}")


class TimelineRenderer:
    """Renders one device's :class:`DeviceTimeline` between two instants as an SVG string."""

    def __init__(self, lane: DeviceTimeline, start: datetime, end: datetime) -> None:
        self.lane = lane
        self.zone = _zone(lane.time_zone)
        self.axis = _Axis(start, max(end, start + timedelta(minutes=30)))
        self.parts: list[str] = []
        self.y = 0.0
        # The last instant anything was sampled; the picture past it is not an observation.
        self.observed_until = max((sample.at for sample in lane.samples), default=start)

    # ---- whole picture --------------------------------------------------------------------

    def render(self) -> str:
        self.y = 40
        self._axis_labels()
        self._rows()
        self._flag()
        self._actions()
        self._soc()
        body_bottom = self.y
        self._unobserved(top=34, bottom=body_bottom)
        self._markers(top=34, bottom=body_bottom)
        height = body_bottom + 8
        grid = self._grid(top=34, bottom=body_bottom)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {WIDTH} {height:.0f}" '
            f'width="{WIDTH}" height="{height:.0f}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" '
            f'role="img" aria-label="timeline of {escape(self.lane.device_id)}">'
            f'<rect x="0" y="0" width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>'
            + grid
            + "".join(self.parts)
            + "</svg>"
        )

    def _grid(self, top: float, bottom: float) -> str:
        lines = [
            f'<line x1="{self.axis.x(t):.1f}" y1="{top}" x2="{self.axis.x(t):.1f}" y2="{bottom:.1f}" stroke="#e2e8f0"/>'
            for t in self.axis.ticks()
        ]
        return "".join(lines)

    def _axis_labels(self) -> None:
        zone_name = self.lane.time_zone or "UTC"
        self.parts.append(_text(8, 14, "UTC", size=10, colour="#64748b"))
        self.parts.append(_text(8, 28, f"plant ({zone_name})", size=10, colour="#64748b"))
        previous_day = None
        for tick in self.axis.ticks():
            x = self.axis.x(tick)
            day = tick.strftime("%m-%d")
            utc_label = tick.strftime("%H:%M") if day == previous_day else tick.strftime("%m-%d %H:%M")
            previous_day = day
            local = tick.astimezone(self.zone)
            self.parts.append(_text(x, 14, utc_label, size=10, anchor="middle", colour="#475569"))
            self.parts.append(_text(x, 28, local.strftime("%H:%M %Z"), size=10, anchor="middle", colour="#94a3b8"))

    def _lane_label(self, label: str, height: float = LANE_H, colour: str = "#334155") -> None:
        self.parts.append(_text(8, self.y + height / 2 + 4, label, colour=colour))
        self.parts.append(
            f'<rect x="{LABEL_W}" y="{self.y:.1f}" width="{PLOT_W}" height="{height}" fill="#f8fafc" stroke="#eef2f7"/>'
        )

    def _heading(self, label: str) -> None:
        self.parts.append(_text(8, self.y + 12, label, size=10, colour="#64748b", weight="600"))
        self.y += 16

    # ---- lanes ----------------------------------------------------------------------------

    def _intervals(self) -> list[tuple[DeviceSample, datetime, datetime, bool]]:
        """(sample, from, to, projected): each sample holds until the next one; the last one to the
        axis end, drawn as projected because nothing was observed past it."""
        latest: dict[datetime, DeviceSample] = {}
        for sample in self.lane.samples:
            latest[sample.at] = sample  # several steps at one instant: the last one stands
        ordered = sorted(latest.values(), key=lambda s: s.at)
        spans = []
        for index, sample in enumerate(ordered):
            end = ordered[index + 1].at if index + 1 < len(ordered) else self.axis.end
            spans.append((sample, sample.at, end, index + 1 == len(ordered)))
        return spans

    def _rows(self) -> None:
        spans = self._intervals()
        owners: list[str] = []
        for sample, _, _, _ in spans:
            for group in sample.groups:
                owner = str(group.get("owner") or "unknown")
                if owner not in owners:
                    owners.append(owner)
        owners.sort(key=lambda o: (o != "amps", o))
        self._heading("NATIVE ROWS (plant time)")
        if not owners:
            self._lane_label("no rows", colour="#94a3b8")
            self.y += LANE_H + GAP
            return
        for owner in owners:
            self._lane_label(owner, colour=owner_colour(owner))
            for bar in self._row_bars(spans, owner):
                self._row_bar(owner, bar)
            self.y += LANE_H + 2
        self.y += GAP

    def _row_bars(self, spans: list[tuple[DeviceSample, datetime, datetime, bool]], owner: str) -> list[dict[str, Any]]:
        """Each occurrence of each of `owner`'s rows, one bar per uninterrupted run: a row that
        stays the same across several samples is drawn once, not cut at every step."""
        bars: list[dict[str, Any]] = []
        open_bars: dict[tuple[Any, ...], dict[str, Any]] = {}
        for sample, low, high, projected in spans:
            if high <= low:
                continue
            for group in sample.groups:
                if str(group.get("owner") or "unknown") != owner:
                    continue
                identity = tuple(sorted((k, str(v)) for k, v in group.items())) + (sample.flag, projected)
                for begins, ends in row_occurrences(group, self.zone, low, high):
                    previous = open_bars.get(identity)
                    if previous is not None and previous["to"] == begins:
                        previous["to"] = ends
                        continue
                    bar = {"from": begins, "to": ends, "group": group, "flag": sample.flag, "projected": projected}
                    bars.append(bar)
                    open_bars[identity] = bar
        return bars

    def _row_bar(self, owner: str, bar: dict[str, Any]) -> None:
        group, flag, projected = bar["group"], bar["flag"], bar["projected"]
        x1, x2 = self.axis.x(bar["from"]), self.axis.x(bar["to"])
        title = (
            f"{owner} {group.get('workMode')} {group.get('start')}–{group.get('end')} plant time"
            f"{' · ' + str(group.get('actionId')) if group.get('actionId') else ''}"
            f"{' · scheduler flag off: not running' if flag is False else ''}"
            f"{' · after the last observation' if projected else ''}"
        )
        colour = owner_colour(owner)
        self.parts.append(
            _rect(x1, self.y + 3, x2 - x1, LANE_H - 6, colour, title=title, opacity=0.85 if flag else 0.3,
                  stroke=colour if projected else None, dash=projected)
        )
        label = _fitting(x2 - x1, f"{group.get('workMode')} {group.get('start')}–{group.get('end')}", str(group.get("workMode")))
        if label:
            self.parts.append(_text(x1 + 4, self.y + LANE_H / 2 + 4, label, size=10, colour="#ffffff" if flag else "#1e293b"))

    def _flag(self) -> None:
        spans = self._intervals()
        if not spans or all(sample.flag is None for sample, *_ in spans):
            return
        self._lane_label("scheduler flag", height=12)
        merged: list[list[Any]] = []  # [flag, from, to]: runs of one flag value drawn as one bar
        for sample, low, high, _ in spans:
            if high <= low or sample.flag is None:
                continue
            if merged and merged[-1][0] == sample.flag and merged[-1][2] == low:
                merged[-1][2] = high
            else:
                merged.append([sample.flag, low, high])
        for flag, low, high in merged:
            colour = "#0f766e" if flag else "#e2e8f0"
            label = "on" if flag else "off"
            self.parts.append(_rect(self.axis.x(low), self.y + 2, self.axis.x(high) - self.axis.x(low), 8, colour,
                                    title=f"flag {label} from {_fmt(low)} UTC", radius=1))
        self.y += 12 + GAP + 4

    def _actions(self) -> None:
        records = sorted(self.lane.actions.values(), key=lambda r: str(r.get("createdAt")))
        self._heading("PLATFORM ACTIONS")
        if not records:
            self._lane_label("no actions", colour="#94a3b8")
            self.y += LANE_H + GAP
            return
        for record in records[-10:]:
            self._action(record)
            self.y += LANE_H + 2
        self.y += GAP

    def _action(self, record: dict[str, Any]) -> None:
        state = str(record.get("state"))
        command = (record.get("parameters") or {}).get("mode", "?") if isinstance(record.get("parameters"), dict) else "?"
        self._lane_label(f"{_short_id(str(record.get('id')))} {command}")
        created = parse_instant(record.get("createdAt"))
        start = parse_instant(record.get("start"))
        end = parse_instant(record.get("end"))
        acknowledged = parse_instant(record.get("acknowledgedAt"))
        finished = parse_instant(record.get("completedAt"))
        updated = parse_instant(record.get("updatedAt"))
        top, height = self.y + 4, LANE_H - 8
        if start is not None and end is not None:
            # The declared window: what the client asked for, whatever happened to the action.
            self.parts.append(_rect(self.axis.x(start), self.y + 1, self.axis.x(end) - self.axis.x(start), LANE_H - 2,
                                    "none", stroke="#1e3a8a", dash=True,
                                    title=f"declared window {_fmt(start)} → {_fmt(end)} UTC"))
        if created is None:
            return
        seen = self.observed_until
        fired = start if start is not None else created
        # Draw only what was observed: a state after the last sample is not known.
        waiting_until = min(updated if state == "cancelled" and updated else fired, seen)
        if start is not None and waiting_until > created:
            self.parts.append(_rect(self.axis.x(created), top, self.axis.x(waiting_until) - self.axis.x(created), height,
                                    STATE_COLOURS["scheduled"], title=f"scheduled from {_fmt(created)} UTC"))
        if state not in ("cancelled", "scheduled") and fired <= seen:
            flight_end = min(finished or seen, seen)
            self.parts.append(_rect(self.axis.x(fired), top, self.axis.x(flight_end) - self.axis.x(fired), height,
                                    STATE_COLOURS["acknowledged"],
                                    title=f"in flight from {_fmt(fired)}" + (f", acknowledged {_fmt(acknowledged)}" if acknowledged else "")))
        if state == "completed" and finished is not None:
            until = end if end is not None and end > finished else finished + timedelta(seconds=self.axis.span / 200)
            until = min(until, max(seen, finished + timedelta(seconds=self.axis.span / 200)))
            self.parts.append(_rect(self.axis.x(finished), top, self.axis.x(until) - self.axis.x(finished), height,
                                    STATE_COLOURS["completed"], title=f"completed {_fmt(finished)} UTC"))
        if state in ("failed", "cancelled"):
            at = finished if state == "failed" and finished else updated
            if at is not None:
                self._cross(self.axis.x(at), self.y + LANE_H / 2, STATE_COLOURS[state],
                            f"{state} {_fmt(at)} UTC" + (f" · {record.get('errorCode')}" if record.get("errorCode") else ""))
        badge_x = LABEL_W - 6
        self.parts.append(
            f'<circle cx="{badge_x}" cy="{self.y + LANE_H / 2:.1f}" r="4" fill="{STATE_COLOURS.get(state, "#000")}">'
            f"<title>{escape(state)}</title></circle>"
        )

    def _cross(self, x: float, y: float, colour: str, title: str) -> None:
        self.parts.append(
            f'<g stroke="{colour}" stroke-width="2.4" stroke-linecap="round"><title>{escape(title)}</title>'
            f'<line x1="{x - 5:.1f}" y1="{y - 5:.1f}" x2="{x + 5:.1f}" y2="{y + 5:.1f}"/>'
            f'<line x1="{x - 5:.1f}" y1="{y + 5:.1f}" x2="{x + 5:.1f}" y2="{y - 5:.1f}"/></g>'
        )

    def _soc(self) -> None:
        points = [(s.at, s.soc) for s in sorted(self.lane.samples, key=lambda s: s.at) if s.soc is not None]
        if not points:
            return
        height = 54
        self._heading("STATE OF CHARGE")
        self._lane_label("SoC %", height=height)
        for level in (0, 50, 100):
            y = self.y + height - level / 100 * height
            self.parts.append(f'<line x1="{LABEL_W}" y1="{y:.1f}" x2="{LABEL_W + PLOT_W}" y2="{y:.1f}" stroke="#e2e8f0"/>')
            self.parts.append(_text(LABEL_W - 4, y + 3, str(level), size=9, anchor="end", colour="#94a3b8"))
        coords = " ".join(f"{self.axis.x(at):.1f},{self.y + height - soc / 100 * height:.1f}" for at, soc in points)
        self.parts.append(f'<polyline points="{coords}" fill="none" stroke="#0f172a" stroke-width="1.6"/>')
        for at, soc in points:
            self.parts.append(
                f'<circle cx="{self.axis.x(at):.1f}" cy="{self.y + height - soc / 100 * height:.1f}" r="2.2" fill="#0f172a">'
                f"<title>{soc:.1f} % at {_fmt(at)} UTC</title></circle>"
            )
        self.y += height + GAP

    def _unobserved(self, top: float, bottom: float) -> None:
        if self.observed_until >= self.axis.end:
            return
        x = self.axis.x(self.observed_until)
        self.parts.append(
            f'<rect x="{x:.1f}" y="{top}" width="{LABEL_W + PLOT_W - x:.1f}" height="{bottom - top:.1f}" '
            'fill="#94a3b8" fill-opacity="0.10"><title>after the last observation: the clock never got here</title></rect>'
        )
        if LABEL_W + PLOT_W - x > 90:
            self.parts.append(_text(LABEL_W + PLOT_W - 4, top + 10, "not reached", size=9, anchor="end", colour="#94a3b8"))

    def _markers(self, top: float, bottom: float) -> None:
        placed: list[float] = []
        for marker in sorted(self.lane.markers, key=lambda m: m.at):
            if not (self.axis.start <= marker.at <= self.axis.end):
                continue
            x = self.axis.x(marker.at)
            colour = MARKER_COLOURS.get(marker.kind, "#000")
            self.parts.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{colour}" stroke-width="1.4" '
                f'stroke-dasharray="3 3"><title>{escape(marker.label)}</title></line>'
            )
            # Labels of markers at (nearly) the same x stack instead of overprinting each other.
            stack = sum(1 for other in placed if abs(other - x) < 120)
            placed.append(x)
            anchor = "end" if x > LABEL_W + PLOT_W - 150 else "start"
            dx = -4 if anchor == "end" else 4
            self.parts.append(
                f'<g><title>{escape(marker.label)}</title>'
                + _text(x + dx, bottom - 4 - stack * 12, "▲ " + marker.label if marker.kind == "conflict" else "◆ " + marker.label,
                        size=10, anchor=anchor, colour=colour, weight="600")
                + "</g>"
            )
