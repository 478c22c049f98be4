"""The one place that checks an HTTP response against an OpenAPI 3.1 document.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so each response schema is compiled into a
:class:`jsonschema.Draft202012Validator` whose ``$ref``s resolve against the whole document,
registered once in a :class:`referencing.Registry`. Validators are built on first use per
(operation, status, media type) and kept.

jsonschema walks a schema at a few microseconds per subschema, which puts a device read above
a millisecond. Responses are checked on every request in the suites, and nearly all of them are
valid, so each schema is also compiled into a plain-Python predicate (:class:`_Predicates`) for
the keywords these documents use. A body the predicate accepts is done; any other body goes to
jsonschema, which stays the authority for every verdict and every reported violation. A schema
using a keyword the predicate compiler does not know gets no predicate at all.

Format assertions stay off: the documents carry their rules as patterns, which every
validator applies the same way.
"""

from __future__ import annotations

import json
import numbers
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..simulator.specs import control_spec_path, public_spec_path

__all__ = [
    "ResponseValidator",
    "SpecViolation",
    "control_spec_path",
    "load_control",
    "load_public",
    "public_spec_path",
]

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE_PARAM = re.compile(r"\{[^/{}]+\}")

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_Check = Callable[[Any], bool]
# A response schema compiled both ways: jsonschema for verdicts and diagnostics, and the fast
# predicate (None when the schema uses a keyword it does not implement).
_CompiledSchema = tuple[Draft202012Validator, _Check | None]


@dataclass(frozen=True, slots=True)
class SpecViolation:
    """One way a response departs from the document.

    ``pointer`` is a JSON pointer into the response body ("" for the body as a whole);
    ``rule`` names what was broken: a JSON Schema keyword (``enum``, ``required``,
    ``additionalProperties``, ...) or one of ``operation-undocumented``,
    ``status-undocumented``, ``content-type``, ``body-missing``, ``body-unexpected``,
    ``json``.
    """

    pointer: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'} [{self.rule}] {self.message}"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + _escape(str(part)) for part in parts)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


@dataclass(frozen=True, slots=True)
class _Template:
    template: str
    regex: re.Pattern[str]
    params: int
    item: Mapping[str, Any]


class ResponseValidator:
    """Checks (method, path, status, body, content type) against one OpenAPI document."""

    def __init__(self, document: Mapping[str, Any], *, source: str = "<memory>") -> None:
        self.document = document
        self.source = source
        self._base_uri = "urn:amps-sim:openapi"
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(self._base_uri, resource)
        self._templates = self._compile_templates(document.get("paths") or {})
        self._predicates = _Predicates(document)
        self._validators: dict[tuple[str, str, str, str], _CompiledSchema | None] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> "ResponseValidator":
        path = Path(path)
        with path.open("r", encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=_YamlLoader)
        if not isinstance(document, dict) or "paths" not in document:
            raise ValueError(f"{path} is not an OpenAPI document")
        return cls(document, source=str(path))

    # ---- operations ------------------------------------------------------------------------

    def _compile_templates(self, paths: Mapping[str, Any]) -> list[_Template]:
        compiled = []
        for template, item in paths.items():
            item, _ = self._resolve(item, "/paths/" + _escape(template))
            pattern = "".join(
                "[^/]+" if _TEMPLATE_PARAM.fullmatch(piece) else re.escape(piece)
                for piece in re.split(r"(\{[^/{}]+\})", template)
                if piece
            )
            params = len(_TEMPLATE_PARAM.findall(template))
            compiled.append(_Template(template, re.compile(pattern), params, item))
        # A concrete path wins over a templated one that also matches (OpenAPI's rule).
        compiled.sort(key=lambda t: (t.params, -len(t.template)))
        return compiled

    def operations(self) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        """Every documented ``(METHOD, template, operation)``."""
        for entry in self._templates:
            for method in _HTTP_METHODS:
                if method in entry.item:
                    yield method.upper(), entry.template, entry.item[method]

    def find_operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The template a concrete path matches and its operation for ``method``, if documented."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        verb = method.lower()
        for entry in self._templates:
            if entry.regex.fullmatch(path):
                operation = entry.item.get(verb)
                if operation is None:
                    return None
                return entry.template, operation
        return None

    # ---- validation ------------------------------------------------------------------------

    def validate(
        self,
        method: str,
        path: str,
        status: int,
        body: bytes | str | dict[str, Any] | list[Any] | None,
        content_type: str | None,
    ) -> list[SpecViolation]:
        found = self.find_operation(method, path)
        if found is None:
            return [SpecViolation("", "operation-undocumented", f"{method.upper()} {path} is not documented")]
        template, operation = found
        verb = method.lower()
        responses_pointer = f"/paths/{_escape(template)}/{verb}/responses"
        responses, responses_pointer = self._resolve(operation.get("responses") or {}, responses_pointer)

        status_key = next(
            (key for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default") if key in responses),
            None,
        )
        if status_key is None:
            documented = ", ".join(sorted(responses))
            return [
                SpecViolation(
                    "",
                    "status-undocumented",
                    f"{method.upper()} {template} documents {documented}, not {status}",
                )
            ]
        response, response_pointer = self._resolve(
            responses[status_key], f"{responses_pointer}/{_escape(status_key)}"
        )
        content: Mapping[str, Any] = response.get("content") or {}
        has_body = body is not None and not (isinstance(body, (bytes, str)) and len(body) == 0)

        if not content:
            if has_body:
                return [SpecViolation("", "body-unexpected", f"status {status} is documented without a body")]
            return []
        if not has_body:
            return [SpecViolation("", "body-missing", f"status {status} is documented with a body")]

        media = self._pick_media(content, content_type, body)
        if media is None:
            documented = ", ".join(content)
            shown = content_type if content_type else "no Content-Type"
            return [SpecViolation("", "content-type", f"got {shown}, documented: {documented}")]

        instance, problem = self._decode(body, media)
        if problem is not None:
            return [problem]
        compiled = self._validator_for(template, verb, status_key, media, response_pointer, content)
        if compiled is None:
            return []
        validator, accepts = compiled
        if accepts is not None and accepts(instance):
            return []
        violations = [v for error in validator.iter_errors(instance) for v in _violations_from(error)]
        violations.sort(key=lambda v: (v.pointer, v.rule))
        return violations

    def _pick_media(self, content: Mapping[str, Any], content_type: str | None, body: Any) -> str | None:
        if content_type is None:
            # A body handed over already parsed carries no header; treat it as the JSON body.
            if isinstance(body, (dict, list)):
                return next((media for media in content if _is_json_media(media.lower())), None)
            return None
        media = _media_type(content_type)
        major = media.split("/", 1)[0]
        for candidate in (media, f"{major}/*", "*/*"):
            for documented in content:
                if documented.lower() == candidate:
                    return documented
        return None

    @staticmethod
    def _decode(body: Any, media: str) -> tuple[Any, SpecViolation | None]:
        if isinstance(body, (dict, list)):
            return body, None
        if _is_json_media(media.lower()):
            try:
                return json.loads(body), None
            except (ValueError, UnicodeDecodeError) as exc:
                return None, SpecViolation("", "json", f"body is not valid JSON: {exc}")
        if isinstance(body, bytes):
            try:
                return body.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                return None, SpecViolation("", "encoding", f"body is not UTF-8 text: {exc}")
        return body, None

    def _validator_for(
        self,
        template: str,
        verb: str,
        status_key: str,
        media: str,
        response_pointer: str,
        content: Mapping[str, Any],
    ) -> _CompiledSchema | None:
        key = (template, verb, status_key, media)
        try:
            return self._validators[key]
        except KeyError:
            pass
        compiled: _CompiledSchema | None = None
        if isinstance(content.get(media), Mapping) and "schema" in content[media]:
            pointer = f"{response_pointer}/content/{_escape(media)}/schema"
            validator = Draft202012Validator({"$ref": f"{self._base_uri}#{pointer}"}, registry=self._registry)
            compiled = (validator, self._predicates.for_pointer(pointer))
        self._validators[key] = compiled
        return compiled

    def schema_validator(self, pointer: str) -> Draft202012Validator:
        """A jsonschema validator for the schema at a JSON pointer into the document."""
        return Draft202012Validator({"$ref": f"{self._base_uri}#{pointer}"}, registry=self._registry)

    def fast_predicate(self, pointer: str) -> Callable[[Any], bool] | None:
        """The compiled accept/refuse predicate for the schema at a pointer (None if unsupported).

        Exposed so tests can hold it to jsonschema's verdicts.
        """
        return self._predicates.for_pointer(pointer)

    def _resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local ``$ref``s (responses, path items) to the object and the pointer it lives at."""
        seen = set()
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"{self.source}: cannot follow $ref {ref!r}")
            seen.add(ref)
            pointer = ref[1:]
            node = self.document
            for token in pointer.split("/")[1:]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, pointer


def _violations_from(error: ValidationError) -> Iterator[SpecViolation]:
    where = _pointer(error.absolute_path)
    rule = error.validator if isinstance(error.validator, str) else "false-schema"
    instance = error.instance
    if rule == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        named = next((name for name in missing if error.message.startswith(repr(name))), None)
        name = named if named is not None else (missing[0] if missing else None)
        yield SpecViolation(
            f"{where}/{_escape(name)}" if name is not None else where,
            rule,
            f"required property {name!r} is missing" if name is not None else error.message,
        )
        return
    if rule == "additionalProperties" and error.validator_value is False and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        declared = schema.get("properties") or {}
        patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
        extras = [
            key for key in instance if key not in declared and not any(p.search(key) for p in patterns)
        ]
        for extra in extras or [None]:
            if extra is None:
                yield SpecViolation(where, rule, error.message)
            else:
                yield SpecViolation(f"{where}/{_escape(extra)}", rule, f"property {extra!r} is not allowed here")
        return
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        # propertyNames checks a key without descending into it; point at that key.
        yield SpecViolation(f"{where}/{_escape(instance)}", rule, f"property name {error.message}")
        return
    yield SpecViolation(where, rule, error.message)


# ---- the fast predicate ------------------------------------------------------------------------


class _Unsupported(Exception):
    """The schema uses a keyword the predicate compiler does not implement."""


# Keywords jsonschema (2020-12) asserts that the compiler leaves to jsonschema alone.
_DEFERRED_KEYWORDS = frozenset(
    {
        "multipleOf",
        "contains",
        "minContains",
        "maxContains",
        "prefixItems",
        "dependentSchemas",
        "unevaluatedItems",
        "unevaluatedProperties",
        "$dynamicRef",
        "$recursiveRef",
        "$id",
    }
)


def _accept(instance: Any) -> bool:
    return True


def _reject(instance: Any) -> bool:
    return False


def _same(one: Any, two: Any) -> bool:
    """JSON equality: booleans never equal numbers, containers compare member by member."""
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_same(a, b) for a, b in zip(one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_same(one[k], two[k]) for k in one)
    return bool(one == two)


def _is_number(instance: Any) -> bool:
    return isinstance(instance, numbers.Number) and not isinstance(instance, bool)


_TYPE_TESTS: dict[str, _Check] = {
    "null": lambda x: x is None,
    "boolean": lambda x: isinstance(x, bool),
    "string": lambda x: isinstance(x, str),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "number": _is_number,
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool))
    or (isinstance(x, float) and x.is_integer()),
}


def _all_of(checks: list[_Check]) -> _Check:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def check(instance: Any) -> bool:
        for one in frozen:
            if not one(instance):
                return False
        return True

    return check


class _Predicates:
    """Compiles 2020-12 schemas of one document into ``instance -> bool`` functions."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        self._by_pointer: dict[str, _Check] = {}

    def for_pointer(self, pointer: str) -> _Check | None:
        try:
            return self._at(pointer)
        except _Unsupported:
            return None

    def _at(self, pointer: str) -> _Check:
        known = self._by_pointer.get(pointer)
        if known is not None:
            return known
        # A placeholder first, so a schema that refers back to itself compiles.
        slot: list[_Check] = []
        self._by_pointer[pointer] = lambda instance: slot[0](instance)
        node: Any = self._document
        try:
            for token in pointer.split("/")[1:]:
                token = token.replace("~1", "/").replace("~0", "~")
                node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            del self._by_pointer[pointer]
            raise _Unsupported(f"unresolvable pointer {pointer!r}") from exc
        try:
            check = self._compile(node)
        except _Unsupported:
            del self._by_pointer[pointer]
            raise
        slot.append(check)
        self._by_pointer[pointer] = check
        return check

    def _compile(self, schema: Any) -> _Check:
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        if not isinstance(schema, Mapping):
            raise _Unsupported(f"not a schema: {schema!r}")
        deferred = _DEFERRED_KEYWORDS.intersection(schema)
        if deferred:
            raise _Unsupported(", ".join(sorted(deferred)))
        checks: list[_Check] = []
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise _Unsupported(f"non-local $ref {ref!r}")
            checks.append(self._at(ref[1:]))
        if "type" in schema:
            checks.append(self._type(schema["type"]))
        if "enum" in schema:
            checks.append(self._enum(list(schema["enum"])))
        if "const" in schema:
            expected = schema["const"]
            checks.append(lambda x: _same(x, expected))
        for builder in (self._string, self._number, self._object, self._array, self._logic):
            check = builder(schema)
            if check is not None:
                checks.append(check)
        return _all_of(checks)

    @staticmethod
    def _type(declared: Any) -> _Check:
        names = [declared] if isinstance(declared, str) else list(declared)
        try:
            tests = [_TYPE_TESTS[name] for name in names]
        except KeyError as exc:
            raise _Unsupported(f"type {exc}") from exc
        if len(tests) == 1:
            return tests[0]
        return lambda x: any(test(x) for test in tests)

    @staticmethod
    def _enum(members: list[Any]) -> _Check:
        if members and all(isinstance(m, str) for m in members):
            allowed = frozenset(members)
            return lambda x: isinstance(x, str) and x in allowed
        return lambda x: any(_same(x, m) for m in members)

    @staticmethod
    def _string(schema: Mapping[str, Any]) -> _Check | None:
        try:
            pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
        except re.error as exc:
            raise _Unsupported(f"pattern {schema['pattern']!r}: {exc}") from exc
        shortest = schema.get("minLength")
        longest = schema.get("maxLength")
        if pattern is None and shortest is None and longest is None:
            return None

        def check(x: Any) -> bool:
            if not isinstance(x, str):
                return True
            if shortest is not None and len(x) < shortest:
                return False
            if longest is not None and len(x) > longest:
                return False
            return pattern is None or pattern.search(x) is not None

        return check

    @staticmethod
    def _number(schema: Mapping[str, Any]) -> _Check | None:
        low = schema.get("minimum")
        high = schema.get("maximum")
        low_open = schema.get("exclusiveMinimum")
        high_open = schema.get("exclusiveMaximum")
        if low is None and high is None and low_open is None and high_open is None:
            return None

        def check(x: Any) -> bool:
            if not _is_number(x):
                return True
            if low is not None and x < low:
                return False
            if high is not None and x > high:
                return False
            if low_open is not None and x <= low_open:
                return False
            return high_open is None or x < high_open

        return check

    def _object(self, schema: Mapping[str, Any]) -> _Check | None:
        keywords = (
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "propertyNames",
            "minProperties",
            "maxProperties",
            "dependentRequired",
        )
        if not any(k in schema for k in keywords):
            return None
        declared = {name: self._compile(sub) for name, sub in (schema.get("properties") or {}).items()}
        try:
            patterned = [
                (re.compile(p), self._compile(sub)) for p, sub in (schema.get("patternProperties") or {}).items()
            ]
        except re.error as exc:
            raise _Unsupported(f"patternProperties: {exc}") from exc
        others = self._compile(schema["additionalProperties"]) if "additionalProperties" in schema else None
        names = self._compile(schema["propertyNames"]) if "propertyNames" in schema else None
        required = tuple(schema.get("required") or ())
        fewest = schema.get("minProperties")
        most = schema.get("maxProperties")
        dependent = {k: tuple(v) for k, v in (schema.get("dependentRequired") or {}).items()}

        def check(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            for name in required:
                if name not in x:
                    return False
            if fewest is not None and len(x) < fewest:
                return False
            if most is not None and len(x) > most:
                return False
            for key, needs in dependent.items():
                if key in x and any(n not in x for n in needs):
                    return False
            for key, value in x.items():
                if names is not None and not names(key):
                    return False
                sub = declared.get(key)
                matched = sub is not None
                if matched and not sub(value):
                    return False
                for regex, pattern_check in patterned:
                    if regex.search(key):
                        matched = True
                        if not pattern_check(value):
                            return False
                if not matched and others is not None and not others(value):
                    return False
            return True

        return check

    def _array(self, schema: Mapping[str, Any]) -> _Check | None:
        if not any(k in schema for k in ("items", "minItems", "maxItems", "uniqueItems")):
            return None
        each = self._compile(schema["items"]) if "items" in schema else None
        fewest = schema.get("minItems")
        most = schema.get("maxItems")
        unique = schema.get("uniqueItems") is True

        def check(x: Any) -> bool:
            if not isinstance(x, list):
                return True
            if fewest is not None and len(x) < fewest:
                return False
            if most is not None and len(x) > most:
                return False
            if each is not None:
                for item in x:
                    if not each(item):
                        return False
            if unique:
                for i in range(1, len(x)):
                    for j in range(i):
                        if _same(x[i], x[j]):
                            return False
            return True

        return check

    def _logic(self, schema: Mapping[str, Any]) -> _Check | None:
        checks: list[_Check] = []
        if "allOf" in schema:
            checks.append(_all_of([self._compile(sub) for sub in schema["allOf"]]))
        if "anyOf" in schema:
            options = [self._compile(sub) for sub in schema["anyOf"]]
            checks.append(lambda x: any(option(x) for option in options))
        if "oneOf" in schema:
            choices = [self._compile(sub) for sub in schema["oneOf"]]
            checks.append(lambda x: sum(1 for choice in choices if choice(x)) == 1)
        if "not" in schema:
            negated = self._compile(schema["not"])
            checks.append(lambda x: not negated(x))
        if "if" in schema and ("then" in schema or "else" in schema):
            condition = self._compile(schema["if"])
            then = self._compile(schema["then"]) if "then" in schema else _accept
            otherwise = self._compile(schema["else"]) if "else" in schema else _accept
            checks.append(lambda x: then(x) if condition(x) else otherwise(x))
        return _all_of(checks) if checks else None


# ---- the project's two documents ---------------------------------------------------------------


@cache
def load_public() -> ResponseValidator:
    return ResponseValidator.from_file(public_spec_path())


@cache
def load_control() -> ResponseValidator:
    return ResponseValidator.from_file(control_spec_path())
