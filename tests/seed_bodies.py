"""Every JSON body printed in the seed documents, and which part of openapi.yaml it answers to.

The seed documents (public Amps docs pages) live outside the repository, in the project's shared
folder. Their JSON bodies are kept here as data (`tests/data/seed_bodies.json`) so the suite runs
anywhere; `extract` reads them out of the documents again, so a test can show the kept copy is
exactly what the documents print.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amps_sim.simulator.errors import STATUS_BY_CODE

KEPT = Path(__file__).parent / "data" / "seed_bodies.json"
# Seed 001 documents another vendor's API: its 409 is there for contrast and must not pass.
CONTRAST_SEEDS = frozenset({"001"})


@dataclass(frozen=True)
class SeedBody:
    seed: str  # the document's number, "000".."004"
    index: int  # the body's place in its document
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"seed {self.seed} body {self.index}"


def seed_dir() -> Path | None:
    """The shared seeds folder: $AMPS_SEEDS_DIR, or `shared/seeds` beside a parent of this file."""
    configured = os.environ.get("AMPS_SEEDS_DIR")
    if configured:
        return Path(configured)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "seeds"
        if candidate.is_dir():
            return candidate
    return None


def bodies_in(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in a text, in order; `{` that starts no JSON is prose."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        at = text.find("{", end)
    return found


def extract(folder: Path) -> list[SeedBody]:
    found = []
    for path in sorted(folder.glob("*.txt")):
        seed = path.name.split("_", 1)[0]
        for index, body in enumerate(bodies_in(path.read_text(encoding="utf-8"))):
            found.append(SeedBody(seed, index, body))
    return found


def kept() -> list[SeedBody]:
    return [SeedBody(item["seed"], item["index"], item["body"]) for item in json.loads(KEPT.read_text(encoding="utf-8"))]


def save(bodies: list[SeedBody]) -> None:
    rows = [{"seed": b.seed, "index": b.index, "body": b.body} for b in bodies]
    KEPT.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Target:
    """Where a body sits in the API: a request body, or a response (method, path, status)."""

    kind: str  # "request" or "response"
    method: str
    path: str
    status: int | None = None


def target_of(body: dict[str, Any]) -> Target:
    """The operation and status a seed body belongs to, read from the body itself."""
    if "action" in body:
        return Target("request", "POST", "/battery/dev_abc123")
    if body.get("success") is False and isinstance(body.get("error"), dict):
        code = body["error"]["code"]
        return Target("response", "POST", body["meta"]["path"], STATUS_BY_CODE[code])
    if "actionId" in body:
        return Target("response", "POST", "/battery/dev_abc123", 202)
    if "id" in body:
        return Target("response", "GET", f"/actions/{body['id']}", 200)
    raise ValueError(f"no API part answers to {body!r}")


if __name__ == "__main__":  # refresh the kept copy: python -m tests.seed_bodies
    folder = seed_dir()
    if folder is None:
        raise SystemExit("no seeds folder found; set AMPS_SEEDS_DIR")
    save(extract(folder))
