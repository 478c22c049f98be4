"""The one place that checks an HTTP response against an OpenAPI 3.1 document.

OpenAPI 3.1 schemas are JSON Schema 2020-12. Each response schema is compiled, on first use per
(operation, status, media type), into a ``jsonschema_rs`` validator whose ``$ref``s resolve
against the whole document, registered once in a :class:`jsonschema_rs.Registry`. jsonschema_rs
gives both the verdict and the violations (keyword and instance pointer); it is the engine
schemathesis itself validates with, so the harness and the fuzzer cannot disagree.

Format assertions stay off: the documents carry their rules as patterns, which every
validator applies the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import quote

import jsonschema_rs
import yaml

from amps_sim.contracts.pointer import escape, follow_refs, pointer_to
from amps_sim.simulator.specs import control_spec_path, public_spec_path

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE_PARAM = re.compile(r"\{[^/{}]+\}")

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_Validator = jsonschema_rs.Draft202012Validator
# A documented response: its `content` map, (template, verb, status key, pointer) to it, and the
# media type and validator each Content-Type seen picked.
_Response = tuple[Mapping[str, Any], tuple[str, str, str, str], dict[str, tuple[str, "_Validator | None"]]]
# Concrete (method, path, status) triples whose documented response is kept; ids make paths many.
_RESPONSES_LIMIT = 4096
# Content-Type headers kept per documented response.
_MEDIAS_LIMIT = 16


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
        self._registry = jsonschema_rs.Registry([(self._base_uri, dict(document))])
        self._templates = self._compile_templates(document.get("paths") or {})
        self._validators: dict[tuple[str, str, str, str], _Validator | None] = {}
        self._responses: dict[tuple[str, str, int], _Response | SpecViolation] = {}
        self._compile_all()

    @classmethod
    def from_file(cls, path: str | Path) -> "ResponseValidator":
        path = Path(path)
        with path.open("r", encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=_YamlLoader)
        if not isinstance(document, dict) or "paths" not in document:
            raise ValueError(f"{path} is not an OpenAPI document")
        return cls(document, source=str(path))

    def _compile_all(self) -> None:
        """Compile every documented response schema now, once per document (about a millisecond
        each), so checking a reply during a run is only the check."""
        for method, template, operation in self.operations():
            verb = method.lower()
            responses, responses_pointer = self._resolve(
                operation.get("responses") or {}, f"/paths/{escape(template)}/{verb}/responses"
            )
            for status_key, response in responses.items():
                response, response_pointer = self._resolve(response, f"{responses_pointer}/{escape(status_key)}")
                content = response.get("content") or {}
                for media in content:
                    self._validator_for(template, verb, status_key, media, response_pointer, content)

    # ---- operations ------------------------------------------------------------------------

    def _compile_templates(self, paths: Mapping[str, Any]) -> list[_Template]:
        compiled = []
        for template, item in paths.items():
            item, _ = self._resolve(item, "/paths/" + escape(template))
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
        """The ways a reply departs from the document ([] when it conforms). `body` is the reply
        as received (bytes or text) or already decoded."""
        # What the document says for this method, path and status is worked out once: a run asks
        # about the same few paths thousands of times, and walking the document each time cost
        # twice what the schema check itself does.
        key = (method, path, status)
        response = self._responses.get(key)
        if response is None:
            response = _remember(self._responses, key, self._response(method, path, status), _RESPONSES_LIMIT)
        if isinstance(response, SpecViolation):
            return [response]
        content, where, medias = response
        has_body = body is not None and not (isinstance(body, (bytes, str)) and len(body) == 0)

        if not content:
            if has_body:
                return [SpecViolation("", "body-unexpected", f"status {status} is documented without a body")]
            return []
        if not has_body:
            return [SpecViolation("", "body-missing", f"status {status} is documented with a body")]

        # The media type and its validator, by the reply's Content-Type (kept per response: a
        # header without one is judged by the body, so is not kept).
        picked = medias.get(content_type) if content_type is not None else None
        if picked is None:
            media = self._pick_media(content, content_type, body)
            if media is None:
                documented = ", ".join(content)
                shown = content_type if content_type else "no Content-Type"
                return [SpecViolation("", "content-type", f"got {shown}, documented: {documented}")]
            template, verb, status_key, response_pointer = where
            picked = media, self._validator_for(template, verb, status_key, media, response_pointer, content)
            if content_type is not None:  # bounded: a server may vary the header's parameters
                _remember(medias, content_type, picked, _MEDIAS_LIMIT)
        media, validator = picked

        instance, problem = self._decode(body, media)
        if problem is not None:
            return [problem]
        if validator is None or validator.is_valid(instance):
            return []
        violations = [v for error in validator.iter_errors(instance) for v in _violations_from(error)]
        violations.sort(key=lambda v: (v.pointer, v.rule))
        return violations

    def _response(self, method: str, path: str, status: int) -> _Response | SpecViolation:
        """The documented response for a concrete method, path and status: its `content`, where
        it sits (template, verb, status key, pointer) and room for its media types; or why there
        is none."""
        found = self.find_operation(method, path)
        if found is None:
            return SpecViolation("", "operation-undocumented", f"{method.upper()} {path} is not documented")
        template, operation = found
        verb = method.lower()
        responses_pointer = f"/paths/{escape(template)}/{verb}/responses"
        responses, responses_pointer = self._resolve(operation.get("responses") or {}, responses_pointer)
        status_key = next(
            (key for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default") if key in responses),
            None,
        )
        if status_key is None:
            documented = ", ".join(sorted(responses))
            return SpecViolation("", "status-undocumented", f"{method.upper()} {template} documents {documented}, not {status}")
        response, response_pointer = self._resolve(responses[status_key], f"{responses_pointer}/{escape(status_key)}")
        content: Mapping[str, Any] = response.get("content") or {}
        return content, (template, verb, status_key, response_pointer), {}

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
    ) -> _Validator | None:
        key = (template, verb, status_key, media)
        try:
            return self._validators[key]
        except KeyError:
            pass
        validator: _Validator | None = None
        if isinstance(content.get(media), Mapping) and "schema" in content[media]:
            validator = self.schema_validator(f"{response_pointer}/content/{escape(media)}/schema")
        self._validators[key] = validator
        return validator

    def schema_validator(self, pointer: str, *, formats: bool = False) -> _Validator:
        """A validator for the schema at a JSON pointer into the document; `formats` also asserts
        `format` (as schemathesis does when it generates)."""
        return jsonschema_rs.Draft202012Validator(
            # A pointer in a URI fragment is percent-encoded (`{deviceId}` is not a URI character).
            {"$ref": f"{self._base_uri}#{quote(pointer, safe='/~')}"}, registry=self._registry, validate_formats=formats
        )

    def _resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local ``$ref``s (responses, path items) to the object and the pointer it lives at."""
        try:
            return follow_refs(self.document, node, pointer)
        except ValueError as exc:
            raise ValueError(f"{self.source}: {exc}") from None


def _remember(memo: dict[Any, Any], key: Any, value: Any, limit: int) -> Any:
    """Store `value` under `key`, emptying `memo` first when it holds `limit` entries (the rule
    `simulator.memo.remember` keeps on the simulator's side, which the harness does not import)."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


def _violations_from(error: jsonschema_rs.ValidationError) -> Iterator[SpecViolation]:
    where = pointer_to(error.instance_path)
    kind = error.kind
    path = error.schema_path
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.FalseSchema):
        rule = "false-schema"
    else:
        rule = str(path[-1]) if path else type(kind).__name__
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        name = kind.property
        yield SpecViolation(f"{where}/{escape(str(name))}", "required", f"required property {name!r} is missing")
        return
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        extras: list[str] = list(kind.unexpected or [])
        if not extras:
            yield SpecViolation(where, rule, error.message)
        for extra in extras:
            yield SpecViolation(f"{where}/{escape(extra)}", rule, f"property {extra!r} is not allowed here")
        return
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
        # propertyNames checks a key without descending into it; point at that key.
        inner = kind.error
        name = inner.instance if isinstance(inner.instance, str) else ""
        yield SpecViolation(f"{where}/{escape(name)}", rule, f"property name {inner.message}")
        return
    yield SpecViolation(where, rule, error.message)


# ---- the project's two documents ---------------------------------------------------------------


@cache
def load_public() -> ResponseValidator:
    return ResponseValidator.from_file(public_spec_path())


@cache
def load_control() -> ResponseValidator:
    return ResponseValidator.from_file(control_spec_path())
