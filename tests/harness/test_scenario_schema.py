"""The committed JSON Schema is the generated one, and the device model mirrors the control spec."""

from __future__ import annotations

import json

from pydantic import BaseModel

from amps_sim.contracts.scenario import SCHEMA_PATH, BatteryGiven, DeviceGiven, GroupGiven, QuotaGiven, SchedulerGiven, schema_text
from amps_sim.contracts.spec import load_control


def test_committed_schema_is_the_generated_one() -> None:
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_text(), "run `python -m amps_sim.contracts.scenario` to regenerate contracts/scenario.schema.json"


def test_schema_forbids_unknown_keys_everywhere() -> None:
    schema = json.loads(schema_text())
    objects = [schema, *schema["$defs"].values()]
    for node in objects:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, node.get("title")


def test_given_devices_mirror_the_control_apis_device_spec() -> None:
    schemas = load_control().document["components"]["schemas"]
    pairs: list[tuple[type[BaseModel], str]] = [
        (DeviceGiven, "DeviceSpec"), (BatteryGiven, "BatterySpec"), (SchedulerGiven, "SchedulerSpec"), (GroupGiven, "GroupSpec"),
        (QuotaGiven, "QuotaSpec"),
    ]
    for model, name in pairs:
        assert set(model.model_fields) == set(schemas[name]["properties"]), name
