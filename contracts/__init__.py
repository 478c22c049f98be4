"""The contract-test harness: OpenAPI documents and the response checks built on them."""

from contracts.spec import ResponseValidator, SpecViolation, load_control, load_public

__all__ = ["ResponseValidator", "SpecViolation", "load_control", "load_public"]
