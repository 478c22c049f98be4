"""Request-shape models for the public API and the translation of shape errors into 400s."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator

from .errors import ApiError, invalid_request


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Quantity(_Closed):
    value: StrictFloat | StrictInt
    unit: StrictStr

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class ActionRequest(_Closed):
    command: StrictStr
    parameters: dict[str, Quantity] | None = None
    start: StrictStr | None = None
    end: StrictStr | None = None


class PushRequest(_Closed):
    action: ActionRequest
    onConflict: Literal["cancel_and_replace", "queue_after"] | None = None


def shape_error(exc: ValidationError, message: str = "The request body does not have the expected shape.") -> ApiError:
    errors = []
    for item in exc.errors(include_url=False):
        path = ".".join(str(p) for p in item.get("loc", ())) or "(body)"
        errors.append({"path": path, "message": item.get("msg", "invalid")})
    return invalid_request(errors, message)


def parse_model(model: type[BaseModel], data: object, message: str | None = None):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise shape_error(exc, message or "The request body does not have the expected shape.") from None
