"""Request-shape models for the public API, field types shared by every request model, and the
translation of validation errors into 400s (or, for well-formed values refused, their own code)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ApiError, invalid_request


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("null is not allowed here; leave the field out instead")
    return value


# An optional field that may be left out but not sent as null (the specs do not make it nullable).
# Pydantic does not validate defaults, so only an explicit null reaches the validator.
NotNull = BeforeValidator(_refuse_null)


def _integral(value: Any) -> Any:
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema's `integer` agrees); 3.5 is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema reads one: a number with no fractional part, booleans excluded.
JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]

_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<frac>[0-9]+))?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


def _rfc3339(value: Any) -> Any:
    # OpenAPI's `format: date-time` is RFC 3339: a string, a full date and time, and an offset.
    # Pydantic alone would also take numbers and digit strings as Unix times, a space for the T
    # and a missing offset; none of those is a date-time here.
    if isinstance(value, datetime):
        # Python callers and unquoted YAML timestamps hand over a datetime; JSON never can.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset")
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string such as 2026-05-08T08:00:00Z")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError("must be an RFC 3339 date-time with an offset, such as 2026-05-08T08:00:00Z")
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    frac = f".{match['frac'][:6].ljust(6, '0')}" if match["frac"] else ""
    clock_time = match["time"]
    # RFC 3339 allows a leap second (:60); Python's datetime does not, so it reads as the next second.
    leap = clock_time.endswith(":60")
    if leap:
        clock_time = clock_time[:-2] + "59"
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{clock_time}{frac}{offset}")
        if leap:
            moment += timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise ValueError("is not a date-time that exists (check the month, day, hour and offset)") from None
    # Whether the instant is one the caller may use (a range) is the caller's to judge, not the shape's.
    return moment


# An instant sent as an RFC 3339 string; parsed to an aware datetime.
IsoInstant = Annotated[datetime, BeforeValidator(_rfc3339)]


class ClosedModel(BaseModel):
    """Every request and spec model: unknown keys are refused, and values are not coerced
    ("50" is not 50 and "yes" is not true), so a typo fails instead of passing silently."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Quantity(ClosedModel):
    # Frozen, as are the other push models: the HTTP layer shares one parsed push among every
    # request that sent the same bytes (web/public.py), so nobody may change one.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    value: StrictFloat | StrictInt
    unit: StrictStr

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class ActionRequest(ClosedModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    command: StrictStr
    parameters: Annotated[dict[str, Quantity] | None, NotNull] = None
    start: Annotated[StrictStr | None, NotNull] = None
    end: Annotated[StrictStr | None, NotNull] = None


class PushRequest(ClosedModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    action: ActionRequest
    onConflict: Annotated[Literal["cancel_and_replace", "queue_after"] | None, NotNull] = None


_REFUSAL = "amps_refusal"


def refusal(code: str, message: str) -> PydanticCustomError:
    """Raise from a model validator to refuse a well-formed value with `code` (a 409 or 422).

    A body that also has shape errors stays a 400 listing all of them; a body whose only problems
    are refusals gets the first refusal's code, with the same `details.errors` list a 400 carries.
    Loaders of files (world files) see one error list either way.
    """
    # The message goes in as context, never as the template, so braces in echoed input stay text.
    return PydanticCustomError(_REFUSAL, "{amps_message}", {"amps_message": message, "amps_code": code})


def shape_error(exc: ValidationError, message: str = "The request body does not have the expected shape.") -> ApiError:
    errors = []
    items = exc.errors(include_url=False)
    for item in items:
        path = ".".join(str(p) for p in item.get("loc", ())) or "(body)"
        errors.append({"path": path, "message": item.get("msg", "invalid")})
    if items and all(item.get("type") == _REFUSAL for item in items):
        first = items[0]
        return ApiError(first["ctx"]["amps_code"], first["msg"], {"errors": errors})
    return invalid_request(errors, message)


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: object, message: str | None = None) -> M:
    """`data` as a `model`, or the ApiError (400, or a refusal's own code) that says what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise shape_error(exc, message or "The request body does not have the expected shape.") from None
