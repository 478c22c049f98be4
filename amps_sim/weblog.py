"""`amps-sim serve`'s log: one line per request, as text or JSON, and aiohttp's refusals of
malformed requests folded into one line each instead of a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import BaseRequest, StreamResponse

ACCESS_LOGGER = "amps_sim.access"
_FIELDS = "amps_fields"
_access = logging.getLogger(ACCESS_LOGGER)


def short_key(key: str | None) -> str:
    """Enough of a key to tell tenants apart in a log, never the whole secret."""
    if not key:
        return "-"
    return key[:10] + "…" if len(key) > 12 else key[:4] + "…"


# What aiohttp's parser refused in the request being logged: set by MalformedRequestFilter when
# aiohttp reports the refusal, read by RequestLog when it logs the 400 moments later in the same
# task, so the two become one line.
_REFUSAL: ContextVar[tuple[int, str] | None] = ContextVar("amps_sim_refusal", default=None)
# The request line aiohttp substitutes for one it could not parse.
_UNPARSED_METHOD = "UNKNOWN"


class RequestLog(AbstractAccessLogger):
    """One line per request: method, path, status, milliseconds, the caller's key shortened."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        refusal = _REFUSAL.get()
        if refusal is not None or request.method == _UNPARSED_METHOD:
            _REFUSAL.set(None)
            status, problem = refusal or (response.status, "not an HTTP request")
            _refused(status, request.remote or "-", problem)
            return
        method, path, status, ms = request.method, request.path, response.status, round(time * 1000, 1)
        key = short_key(request.headers.get("x-api-key"))
        fields = {"method": method, "path": path, "status": status, "ms": ms, "key": key, "remote": request.remote or "-"}
        # The record is made directly: `Logger.info` would first walk the stack for the caller's
        # file and line (which no formatter here prints), a third of a small request's cost.
        _access.handle(_access.makeRecord(
            ACCESS_LOGGER, logging.INFO, __file__, 0, f"{method} {path} {status} {ms}ms key={key}", (), None,
            extra={_FIELDS: fields},
        ))

    @property
    def enabled(self) -> bool:
        # Asked once per connection. Below info (`--log-level warning`) no served request logs a
        # line, and MalformedRequestFilter writes the refusals itself: aiohttp then skips timing
        # and calling this logger for every request.
        return _access.isEnabledFor(logging.INFO)


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs its refusal of an unparsable request (bad request line, header, chunking) with
    the parser's traceback, then answers 400. That is the client's mistake: the record is dropped
    and what was wrong goes into the request's one log line (RequestLog's at info level, written
    here below it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            detail = " ".join((exc.message or type(exc).__name__).split())[:200]
            if _access.isEnabledFor(logging.INFO):
                _REFUSAL.set((exc.code, detail))
            else:
                # RequestLog is not called below info (see its `enabled`): the refusal's line is
                # written here. aiohttp's record names the client ("... from %s", remote).
                args = record.args if isinstance(record.args, tuple) else ()
                remote = str(args[0]) if args and args[0] else "-"
                _refused(exc.code, remote, detail)
            return False
        return True


def _refused(status: int, remote: str, problem: str) -> None:
    fields: dict[str, Any] = {"status": status, "remote": remote, "problem": problem}
    _access.warning("refused a malformed request from %s: %s %s", remote, status, problem, extra={_FIELDS: fields})


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text up to the seconds


def _timestamp(record: logging.LogRecord) -> str:
    """`2026-05-08T08:00:00.123Z`; the date and time part is formatted once per second."""
    whole = int(record.created)
    if _second[0] != whole:
        _second[:] = [whole, datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            # An unhandled error in the simulator itself: a bug, so the traceback stays.
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(), "logger": record.name,
                                 "msg": record.getMessage()}
        entry.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TurnBufferedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines written once per event-loop turn instead of once each.

    With one access line per request, a write (a system call) per line was a large share of a
    small request's cost; lines formatted during one turn of the loop go out together as soon as
    the turn ends (no later than a callback scheduled now). Outside a running loop (start-up,
    shutdown, other threads) a line is written at once, after whatever is waiting.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            text, self._pending = "".join(self._pending), []
            # A broken pipe or a closed stream loses the lines (never the request that logged them).
            with contextlib.suppress(OSError, ValueError):
                self.stream.write(text)
        super().flush()


def configure_logging(level: str, fmt: str) -> None:
    # The served process's records need no thread or process names (no formatter here prints
    # them); logging skips looking them up for every record (the logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = TurnBufferedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.setLevel(level.upper())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    server = logging.getLogger("aiohttp.server")
    # aiohttp reports some refusals (a request that is not HTTP at all) at debug level: let the
    # filter see them whatever the chosen level; the handler's level still decides what prints.
    server.setLevel(logging.DEBUG)
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())
