"""The HTML report: one self-contained file (inline CSS, inline SVG, a few lines of inline script,
no external assets) that opens offline. Per scenario: what it encodes, why it failed, a timeline
picture per device over virtual time, and the request/response transcript.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import Any

from amps_sim.contracts.exchange import Exchange
from amps_sim.contracts.reporting.timeline_svg import MARKER_COLOURS, OWNER_COLOURS, STATE_COLOURS, TimelineRenderer
from amps_sim.contracts.results import RunSummary, ScenarioResult, StepRecord
from amps_sim.contracts.timeline import ScenarioTimeline, parse_instant

_BODY_LIMIT = 6000
_STATUS_TEXT = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}

_CSS = """
:root { --pass:#15803d; --fail:#b91c1c; --skip:#a16207; --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #f1f5f9; }
header { background: #0f172a; color: #f8fafc; padding: 20px 32px; }
header h1 { margin: 0 0 6px; font-size: 22px; font-weight: 650; }
header .meta { color: #cbd5e1; font-size: 13px; }
main { padding: 20px 32px 60px; max-width: 1240px; }
.counts { display: flex; gap: 10px; margin: 14px 0 0; flex-wrap: wrap; }
.count { padding: 6px 12px; border-radius: 8px; font-weight: 600; background: #1e293b; }
.count.passed { color: #86efac; } .count.failed { color: #fca5a5; } .count.skipped { color: #fde68a; }
.badge { display: inline-block; min-width: 42px; text-align: center; padding: 1px 6px; border-radius: 5px;
  font-size: 11px; font-weight: 700; color: #fff; letter-spacing: .03em; }
.badge.passed { background: var(--pass); } .badge.failed { background: var(--fail); } .badge.skipped { background: var(--skip); }
.toolbar { margin: 6px 0 14px; display: flex; gap: 8px; align-items: center; }
.toolbar button { border: 1px solid #cbd5e1; background: #fff; padding: 4px 10px; border-radius: 6px; cursor: pointer; font: inherit; }
.toolbar button.active { background: #0f172a; color: #fff; border-color: #0f172a; }
table.index { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
table.index th, table.index td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); font-size: 13px; }
table.index th { background: #f8fafc; color: var(--muted); font-weight: 600; }
table.index td.num { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
table.index a { color: inherit; text-decoration: none; } table.index a:hover { text-decoration: underline; }
section.scenario { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--pass); border-radius: 8px; margin: 16px 0; }
section.scenario.failed { border-left-color: var(--fail); } section.scenario.skipped { border-left-color: var(--skip); }
section.scenario > details > summary { padding: 10px 14px; cursor: pointer; list-style: none; display: flex; gap: 10px; align-items: baseline; }
section.scenario > details > summary::-webkit-details-marker { display: none; }
summary .name { font-weight: 650; } summary .file { color: var(--muted); font-size: 12px; margin-left: auto; }
.inner { padding: 0 16px 14px; }
.facts { display: grid; grid-template-columns: 110px 1fr; gap: 2px 12px; font-size: 13px; margin: 4px 0 10px; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; }
.tag { display: inline-block; background: #e0e7ff; color: #3730a3; border-radius: 4px; padding: 0 6px; font-size: 11px; margin-right: 4px; }
.failures { background: #fef2f2; border: 1px solid #fecaca; border-radius: 6px; padding: 8px 12px; margin: 8px 0 12px; }
.failures h3 { margin: 0 0 4px; font-size: 13px; color: var(--fail); }
.failures pre { margin: 4px 0 8px; }
.skipnote { background: #fefce8; border: 1px solid #fde68a; border-radius: 6px; padding: 8px 12px; }
h3.device { font-size: 13px; margin: 14px 0 4px; color: #1e293b; }
.timeline-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
svg.timeline { display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: var(--muted); margin: 6px 0 14px; }
.legend i { display: inline-block; width: 14px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
table.steps { width: 100%; border-collapse: collapse; margin-top: 10px; }
table.steps > tbody > tr > td { border-top: 1px solid var(--line); padding: 5px 6px; vertical-align: top; font-size: 13px; }
td.icon { width: 22px; font-weight: 700; } td.icon.passed { color: var(--pass); } td.icon.failed { color: var(--fail); } td.icon.not_run { color: #cbd5e1; }
td.clock { color: var(--muted); white-space: nowrap; font-variant-numeric: tabular-nums; width: 190px; }
.exchange { margin: 6px 0 2px; border: 1px solid var(--line); border-radius: 6px; }
.exchange .line { padding: 4px 8px; background: #f8fafc; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.exchange .status { font-weight: 700; } .s2 { color: var(--pass); } .s4 { color: #c2410c; } .s5 { color: var(--fail); }
.exchange .cols { display: grid; grid-template-columns: 1fr 1fr; }
.exchange .cols > div { min-width: 0; }
.exchange .cols > div + div { border-left: 1px solid var(--line); }
.exchange .label { font-size: 11px; color: var(--muted); padding: 3px 8px 0; }
pre { margin: 0; padding: 4px 8px 8px; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-word; }
.violation { color: #9d174d; background: #fdf2f8; padding: 3px 8px; font-size: 12px; font-family: ui-monospace, Menlo, Consolas, monospace; }
.muted { color: var(--muted); font-size: 12px; }
body.only-failed section.scenario:not(.failed), body.only-failed tr.row:not(.failed) { display: none; }
"""

_SCRIPT = """
document.querySelectorAll('[data-filter]').forEach(function (button) {
  button.addEventListener('click', function () {
    var failed = button.dataset.filter === 'failed';
    document.body.classList.toggle('only-failed', failed);
    document.querySelectorAll('[data-filter]').forEach(function (b) { b.classList.toggle('active', b === button); });
  });
});
"""


def _json(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > _BODY_LIMIT:
        text = text[:_BODY_LIMIT] + f"\n… ({len(text) - _BODY_LIMIT} more characters)"
    return escape(text)


def _anchor(result: ScenarioResult) -> str:
    return "s-" + result.loaded.relative.replace("/", "-").replace(".", "-")


def _legend() -> str:
    items = [f'<span><i style="background:{c}"></i>{escape(o)} rows</span>' for o, c in OWNER_COLOURS.items()]
    items.append('<span><i style="background:#16a34a;opacity:.3"></i>row stored, flag off</span>')
    items.append('<span><i style="border:1.5px dashed #1e3a8a;background:none"></i>declared window</span>')
    items += [f'<span><i style="background:{c}"></i>{s}</span>' for s, c in STATE_COLOURS.items() if s != "acknowledged"]
    items.append(f'<span><i style="background:{STATE_COLOURS["acknowledged"]}"></i>in flight</span>')
    items += [f'<span><i style="background:{c}"></i>{k} marker</span>' for k, c in MARKER_COLOURS.items()]
    return '<div class="legend">' + "".join(items) + "</div>"


def _axis_bounds(timeline: ScenarioTimeline) -> tuple[datetime, datetime] | None:
    if timeline.start is None or timeline.end is None:
        return None
    start, end = timeline.start, timeline.end
    # Show declared windows that lie ahead too, but never stretch the picture past three days.
    horizon = max(end, start + timedelta(days=3))
    latest = end
    for lane in timeline.devices.values():
        for record in lane.actions.values():
            for field in ("start", "end"):
                moment = parse_instant(record.get(field))
                if moment is not None and latest < moment <= horizon:
                    latest = moment
    # Native rows recur daily: with any on the device, show at least one whole day of them.
    has_rows = any(sample.groups for lane in timeline.devices.values() for sample in lane.samples)
    span = max(latest - start, timedelta(hours=24) if has_rows else timedelta(minutes=30))
    return start - span * 0.02, start + span * 1.04


def _timelines(result: ScenarioResult) -> str:
    timeline = result.timeline
    if timeline is None or not timeline.devices:
        return ""
    bounds = _axis_bounds(timeline)
    if bounds is None:
        return ""
    parts = []
    for device_id, lane in timeline.devices.items():
        if not lane.samples:
            continue
        svg = TimelineRenderer(lane, *bounds).render()
        zone = f" · plant zone {lane.time_zone}" if lane.time_zone else ""
        parts.append(f'<h3 class="device">Device {escape(device_id)}{escape(zone)}</h3><div class="timeline-wrap">{svg}</div>')
    return "".join(parts)


def _exchange(exchange: Exchange) -> str:
    status_class = f"s{exchange.status // 100}" if exchange.status else "s5"
    status = str(exchange.status) if not exchange.error else "no reply"
    request_body = "" if exchange.request_body is None else _json(exchange.request_body)
    response_body = "" if exchange.body is None else _json(exchange.body)
    key = exchange.request_headers.get("x-api-key")
    token = exchange.request_headers.get("token")
    if exchange.native:
        # The device's own cloud: signed with a party's token, judged by errno, envelope-checked.
        who = f" · native · token {escape(token)}" if token else " · native · no token"
        errno = exchange.body.get("errno") if isinstance(exchange.body, dict) else None
        if isinstance(errno, int):
            who += f" · errno {errno}"
        checked = "envelope checked"
    else:
        who = f" · key {escape(key)}" if key else " · no key"
        checked = "validated"
    violations = "".join(
        f'<div class="violation">spec: {escape(v.pointer or "/")} [{escape(v.rule)}] {escape(v.message)}</div>'
        for v in exchange.violations
    )
    error = f'<div class="violation">{escape(exchange.error)}</div>' if exchange.error else ""
    return (
        '<div class="exchange">'
        f'<div class="line">{escape(exchange.method)} {escape(exchange.path)} → '
        f'<span class="status {status_class}">{escape(status)}</span>'
        f'<span class="muted">{who} · {exchange.elapsed_s * 1000:.1f} ms · {checked} in {exchange.validation_s * 1000:.2f} ms</span></div>'
        f"{violations}{error}"
        '<div class="cols">'
        f'<div><div class="label">request</div><pre>{request_body or "—"}</pre></div>'
        f'<div><div class="label">response</div><pre>{response_body or "—"}</pre></div>'
        "</div></div>"
    )


def _step_row(step: StepRecord) -> str:
    icon = {"passed": "✓", "failed": "✗", "not_run": "·"}[step.status]
    own = step.own_exchanges
    # A native step first gets its party's key and the device's serial number: show those too.
    setup = [e for e in step.exchanges if e.purpose == "setup"]
    reads = [e for e in step.exchanges if e.purpose == "record"]
    broken_reads = [e for e in reads if e.violations]
    exchanges = "".join(_exchange(e) for e in [*setup, *own, *broken_reads])
    read_note = f'<div class="muted">+ {len(reads)} timeline read(s) by the runner, all spec-checked</div>' if reads else ""
    failures = "".join(f'<div class="violation">{escape(f.message)}</div>' for f in step.failures)
    clock = f"virtual {escape(step.clock.replace('T', ' ').replace('.000Z', 'Z'))}" if step.clock else ""
    return (
        f'<tr><td class="icon {step.status}">{icon}</td>'
        f"<td><b>{step.index + 1}.</b> {escape(step.label)} <span class=\"muted\">line {step.line}</span>"
        f"{failures}{exchanges}{read_note}</td>"
        f'<td class="clock">{clock}</td></tr>'
    )


def _failures(result: ScenarioResult) -> str:
    if result.status == "skipped":
        return f'<div class="skipnote">Skipped: {escape(result.skip_reason or "")}</div>'
    if not result.failures:
        return ""
    items = []
    for failure in result.failures:
        extra = "\n".join(failure.details)
        if failure.diff:
            extra += ("\n" if extra else "") + failure.diff
        items.append(f"<div><b>{escape(failure.headline())}</b>" + (f"<pre>{escape(extra)}</pre>" if extra else "") + "</div>")
    return f'<div class="failures"><h3>Why it failed</h3>{"".join(items)}</div>'


def _scenario(result: ScenarioResult) -> str:
    scenario = result.loaded.scenario
    tags = "".join(f'<span class="tag">{escape(t)}</span>' for t in scenario.tags)
    opened = " open" if result.status == "failed" else ""
    steps = "".join(_step_row(s) for s in result.steps)
    setup = ""
    if result.setup:
        setup = (
            f'<details><summary class="muted">setup: {len(result.setup)} request(s) '
            "(tenant creation and the first timeline reads)</summary>"
            + "".join(_exchange(e) for e in result.setup if e.purpose == "setup")
            + "</details>"
        )
    return (
        f'<section class="scenario {result.status}" id="{_anchor(result)}"><details{opened}>'
        f'<summary><span class="badge {result.status}">{_STATUS_TEXT[result.status]}</span>'
        f'<span class="name">{escape(scenario.name)}</span>'
        f'<span class="file">{escape(result.loaded.relative)} · {result.duration_s * 1000:.0f} ms</span></summary>'
        '<div class="inner">'
        '<dl class="facts">'
        f"<dt>what</dt><dd>{escape(scenario.description)}</dd>"
        f"<dt>source</dt><dd>{escape(scenario.source)}</dd>"
        f"<dt>tags</dt><dd>{tags or '—'}</dd>"
        f"<dt>validation</dt><dd>{result.responses} responses checked against the spec in {result.validation_s * 1000:.1f} ms</dd>"
        "</dl>"
        f"{_failures(result)}{_timelines(result)}{setup}"
        f'<table class="steps"><tbody>{steps}</tbody></table>'
        "</div></details></section>"
    )


def _index(summary: RunSummary) -> str:
    rows = []
    for result in summary.results:
        rows.append(
            f'<tr class="row {result.status}"><td><span class="badge {result.status}">{_STATUS_TEXT[result.status]}</span></td>'
            f"<td>{escape(result.loaded.area)}</td>"
            f'<td><a href="#{_anchor(result)}">{escape(result.loaded.scenario.name)}</a></td>'
            f"<td class=\"num\">{len(result.steps)}</td><td class=\"num\">{result.duration_s * 1000:.0f} ms</td></tr>"
        )
    return (
        '<table class="index"><thead><tr><th></th><th>area</th><th>scenario</th><th class="num">steps</th>'
        f'<th class="num">time</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def render_html(summary: RunSummary, *, generated: datetime | None = None) -> str:
    generated = generated or datetime.now(timezone.utc)
    passed, failed, skipped = summary.count("passed"), summary.failed, summary.count("skipped")
    broken = "".join(f'<div class="failures"><pre>{escape(m)}</pre></div>' for m in summary.broken_files)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>amps-sim scenarios: {passed} passed, {failed} failed</title><style>{_CSS}</style></head><body>"
        "<header><h1>amps-sim scenario report</h1>"
        f'<div class="meta">target {escape(summary.target)} · {summary.duration_s:.2f} s · spec validation '
        f"{summary.validation_s:.3f} s over {summary.responses} responses · generated {generated:%Y-%m-%d %H:%M} UTC</div>"
        f'<div class="counts"><span class="count passed">{passed} passed</span>'
        f'<span class="count failed">{failed} failed</span><span class="count skipped">{skipped} skipped</span></div></header>'
        "<main>"
        '<div class="toolbar"><button data-filter="all" class="active">all</button>'
        '<button data-filter="failed">failed only</button></div>'
        f"{broken}{_index(summary)}<h2>Timelines legend</h2>{_legend()}"
        + "".join(_scenario(r) for r in summary.results)
        + f"</main><script>{_SCRIPT}</script></body></html>"
    )


def write_html(summary: RunSummary, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(summary), encoding="utf-8")
    return path
