"""The world's schema is written three times on purpose, and held equal here.

The simulator's request models (the ones that validate), the control spec
(`simulator/specs/control-openapi.yaml`, what clients and schemathesis read) and the scenario
file's `given` models (what editors complete; they leave validation to the simulator) describe
the same objects. The harness must not import the simulator, so the `given` models cannot be
derived from the simulator's; and the spec is a document users read, so it is not generated.
Instead this test compares them field by field and constraint by constraint: names, required
fields, JSON types and nullability, bounds, lengths, patterns, enums and defaults.
"""

from __future__ import annotations

import re
import types
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from amps_sim.contracts.pointer import resolve
from amps_sim.contracts.scenario import BatteryGiven, DeviceGiven, GroupGiven, QuotaGiven, SchedulerGiven, TenantGiven
from amps_sim.contracts.spec import load_control
from amps_sim.simulator.device import _ZONE_NAME, BatterySpec, DeviceSpec, GroupSpec, SchedulerSpec
from amps_sim.simulator.foxess.cloud import OemKeyRequest
from amps_sim.simulator.foxess.quotas import QuotaSpec
from amps_sim.simulator.profiles import profile_names
from amps_sim.simulator.validation import NotNull
from amps_sim.simulator.world.tenants import AdvanceRequest, ClockSpec, FaultRequest, SchedulerWrite, TenantSpec

# simulator model -> control spec schema (the request bodies of the control API and their parts)
PAIRS: list[tuple[type[BaseModel], str]] = [
    (TenantSpec, "TenantSpec"),
    (ClockSpec, "ClockSpec"),
    (DeviceSpec, "DeviceSpec"),
    (BatterySpec, "BatterySpec"),
    (SchedulerSpec, "SchedulerSpec"),
    (GroupSpec, "GroupSpec"),
    (QuotaSpec, "QuotaSpec"),
    (AdvanceRequest, "AdvanceRequest"),
    (SchedulerWrite, "SchedulerWrite"),
    (FaultRequest, "FaultRequest"),
    (OemKeyRequest, "OemKeyRequest"),
]
# scenario `given` model -> simulator model
GIVEN: list[tuple[type[BaseModel], type[BaseModel]]] = [
    (DeviceGiven, DeviceSpec),
    (BatteryGiven, BatterySpec),
    (SchedulerGiven, SchedulerSpec),
    (GroupGiven, GroupSpec),
    (QuotaGiven, QuotaSpec),
]
# Constraints a model enforces in a validator rather than in the field's type; the facts are the
# validator's own (the same regex object, the same profile list), so they cannot drift either.
BY_VALIDATOR: dict[tuple[str, str], dict[str, Any]] = {
    ("DeviceSpec", "profile"): {"enum": tuple(sorted(profile_names()))},
    ("DeviceSpec", "timeZone"): {"pattern": f"^{_ZONE_NAME.pattern}$"},
    # `by` is checked by parse_span (one to four parts of up to five digits, two decimals, a unit).
    ("AdvanceRequest", "by"): {"pattern": r"^([0-9]{1,5}(\.[0-9]{1,2})?[dhms]){1,4}$"},
}
_BOUNDS = {annotated_types.Gt: "gt", annotated_types.Ge: "ge", annotated_types.Lt: "lt", annotated_types.Le: "le"}
_LENGTHS = {annotated_types.MinLen: "min_length", annotated_types.MaxLen: "max_length"}


def _types(annotation: Any) -> set[str]:
    """The JSON types a Python annotation admits (a model is `object`)."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return set().union(*(_types(arg) for arg in get_args(annotation)))
    if origin is not None and getattr(annotation, "__metadata__", None) is not None:
        return _types(get_args(annotation)[0])
    if origin is Literal:
        return {"string"}
    if origin is list:
        return {"array"}
    if annotation is type(None):
        return {"null"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"object"}
    if annotation is bool:
        return {"boolean"}
    if annotation is int:
        return {"integer"}
    if annotation is float:
        return {"number"}
    if annotation in (str, datetime):
        return {"string"}
    raise AssertionError(f"no JSON type for {annotation!r}")


def _literal(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) is Literal:
        return tuple(sorted(get_args(annotation)))
    for arg in get_args(annotation):
        found = _literal(arg)
        if found is not None:
            return found
    return None


def _number(kinds: set[str]) -> set[str]:
    # JSON Schema's `number` includes the integers; a float-or-int field is a `number`.
    return kinds - {"integer"} if "number" in kinds else kinds


def model_facts(model: type[BaseModel], name: str, field: FieldInfo) -> dict[str, Any]:
    kinds = _types(field.annotation)
    if any(m is NotNull for m in field.metadata):
        kinds.discard("null")  # optional, but an explicit null is refused
    facts: dict[str, Any] = {"types": _number(kinds), "required": field.is_required()}
    for meta in field.metadata:
        for kind, key in _BOUNDS.items():
            if isinstance(meta, kind):
                facts[key] = getattr(meta, key)
        for kind, key in _LENGTHS.items():
            if isinstance(meta, kind):
                facts[key] = getattr(meta, key)
        if getattr(meta, "pattern", None) is not None:
            facts["pattern"] = meta.pattern
    enum = _literal(field.annotation)
    if enum is not None:
        facts["enum"] = enum
    if not field.is_required() and field.default_factory is None and field.default is not None:
        facts["default"] = field.default
    facts.update(BY_VALIDATOR.get((model.__name__, name), {}))
    return facts


def _follow(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with `$ref`s merged in (the property's own keys win, as in 3.1)."""
    merged = dict(node)
    while "$ref" in merged:
        target = resolve(document, merged.pop("$ref")[1:])
        merged = {**target, **merged}
    return merged


def spec_facts(document: dict[str, Any], schema: dict[str, Any], name: str) -> dict[str, Any]:
    prop = _follow(document, schema["properties"][name])
    declared = prop.get("type")
    kinds = set(declared if isinstance(declared, list) else [declared]) if declared else set()
    facts: dict[str, Any] = {"types": _number(kinds), "required": name in schema.get("required", [])}
    for key, ours in (("exclusiveMinimum", "gt"), ("minimum", "ge"), ("exclusiveMaximum", "lt"), ("maximum", "le"),
                      ("minLength", "min_length"), ("maxLength", "max_length"), ("minItems", "min_length"), ("maxItems", "max_length")):
        if key in prop:
            facts[ours] = prop[key]
    if "pattern" in prop:
        facts["pattern"] = prop["pattern"]
    if "enum" in prop:
        facts["enum"] = tuple(sorted(prop["enum"]))
    if "default" in prop:
        facts["default"] = prop["default"]
    return facts


def _document() -> dict[str, Any]:
    return load_control().document


@pytest.mark.parametrize(("model", "schema_name"), PAIRS, ids=[name for _, name in PAIRS])
def test_simulator_model_and_control_spec_agree(model: type[BaseModel], schema_name: str) -> None:
    document = _document()
    schema = _follow(document, document["components"]["schemas"][schema_name])
    assert set(model.model_fields) == set(schema["properties"]), "field names"
    assert schema.get("additionalProperties") is False
    differences = {}
    for name, field in model.model_fields.items():
        ours, theirs = model_facts(model, name, field), spec_facts(document, schema, name)
        if ours != theirs:
            differences[name] = {"model": ours, "spec": theirs}
    assert differences == {}


@pytest.mark.parametrize(("given", "model"), GIVEN, ids=[g.__name__ for g, _ in GIVEN])
def test_scenario_given_models_follow_the_simulator_models(given: type[BaseModel], model: type[BaseModel]) -> None:
    """Same fields, same JSON types; the `given` side leaves every value optional (unset takes
    the simulator's default) and leaves the constraints to the simulator, which reports them."""
    assert set(given.model_fields) == set(model.model_fields)
    for name, field in given.model_fields.items():
        ours = _types(model.model_fields[name].annotation) - {"null"}
        theirs = _types(field.annotation) - {"null"}
        assert _number(theirs) == _number(ours), name
        assert field.is_required() == model.model_fields[name].is_required(), name


def test_the_tenant_given_writes_the_tenant_spec() -> None:
    """`given` spells the tenant's clock as `now` (always a virtual clock); the rest is TenantSpec's."""
    assert set(TenantGiven.model_fields) - {"now"} == set(TenantSpec.model_fields) - {"clock"}


def test_the_comparison_sees_a_difference() -> None:
    """Break one constraint on a copy of the spec: the comparison must notice."""
    document = _document()
    schema = _follow(document, document["components"]["schemas"]["BatterySpec"])
    broken = {**schema, "properties": {**schema["properties"], "soc": {"type": "number", "minimum": 0, "maximum": 99}}}
    field = BatterySpec.model_fields["soc"]
    assert model_facts(BatterySpec, "soc", field) != spec_facts(document, broken, "soc")
    assert re.fullmatch(BY_VALIDATOR[("DeviceSpec", "timeZone")]["pattern"], "Europe/London")
