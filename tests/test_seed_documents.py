"""Item 1 of issue 12: every JSON body the seed documents print passes openapi.yaml verbatim.

Requests are checked against the push request schema, responses against the response of the
operation and status they belong to (read from the body: an envelope's `meta.path` and code, a
202 reply, an action record). Seed 001 documents another vendor's API: its 409 must not pass.
"""

from __future__ import annotations

import pytest

from amps_sim.contracts.spec import load_public

from .seed_bodies import CONTRAST_SEEDS, SeedBody, extract, kept, seed_dir, target_of

PUSH_REQUEST = "/components/schemas/PushRequest"
BODIES = kept()
AMPS_BODIES = [b for b in BODIES if b.seed not in CONTRAST_SEEDS]


def test_the_kept_bodies_are_exactly_what_the_seed_documents_print() -> None:
    folder = seed_dir()
    if folder is None:
        pytest.fail("the seed documents were not found: set AMPS_SEEDS_DIR to the shared seeds folder")
    assert extract(folder) == BODIES


def test_every_kind_of_body_is_covered() -> None:
    kinds = {(t.kind, t.method, t.status) for t in map(target_of, (b.body for b in AMPS_BODIES))}
    assert kinds == {
        ("request", "POST", None),
        ("response", "POST", 409),  # CONFLICT (pending, in flight) and ACTION_NOT_CANCELLABLE
        ("response", "POST", 202),
        ("response", "GET", 200),  # action records: failed, cancelled, and the trimmed follow-up
    }
    assert len(AMPS_BODIES) == 18


@pytest.mark.parametrize("seed_body", AMPS_BODIES, ids=lambda b: b.label)
def test_seed_body_passes_the_spec_verbatim(seed_body: SeedBody) -> None:
    spec = load_public()
    target = target_of(seed_body.body)
    if target.kind == "request":
        errors = [e.message for e in spec.schema_validator(PUSH_REQUEST).iter_errors(seed_body.body)]
        assert errors == [], seed_body.body
    else:
        assert target.status is not None
        assert spec.validate(target.method, target.path, target.status, seed_body.body, "application/json") == []


@pytest.mark.parametrize("seed_body", [b for b in BODIES if b.seed in CONTRAST_SEEDS], ids=lambda b: b.label)
def test_another_apis_conflict_body_is_refused(seed_body: SeedBody) -> None:
    violations = load_public().validate("POST", "/battery/dev_abc123", 409, seed_body.body, "application/json")
    assert {v.rule for v in violations} >= {"required", "additionalProperties"}
