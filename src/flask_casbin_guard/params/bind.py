"""Bind a request to a :class:`BindingPlan`, collecting every problem before answering."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from ..errors import ParamIssue
from .converters import ABSENT, Invalid
from .plan import MISSING, BindingPlan, ParamSpec

#: Values of parameters with such names are never echoed back, even when invalid.
_SECRET_NAME = re.compile(r"pass|secret|token|key|auth|credential|cookie", re.IGNORECASE)
_ECHO_LIMIT = 40
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_UNSET: Any = object()


def bind(
    plan: BindingPlan, view_args: Mapping[str, Any], request: Request
) -> tuple[dict[str, Any], list[ParamIssue]]:
    """Converted values for the view, and the list of problems (empty when all is well)."""
    values: dict[str, Any] = {}
    issues: list[ParamIssue] = []
    sources: _Sources | None = None
    for spec in plan.params:
        if spec.provider is not None:
            values[spec.name] = spec.provider.factory()
        elif spec.name in view_args and spec.source in ("auto", "path"):
            _convert_path(spec, view_args[spec.name], values, issues)
        else:
            if sources is None:
                sources = _Sources(request, issues)
            sources.lookup(spec, values, issues)
    if plan.var_keyword:
        values.update((k, v) for k, v in view_args.items() if k not in plan.names)
    if plan.var_keyword or plan.strict:
        if sources is None:
            sources = _Sources(request, issues)
        sources.remaining(plan, values, issues)
    return values, issues


def _convert_path(
    spec: ParamSpec, raw: Any, values: dict[str, Any], issues: list[ParamIssue]
) -> None:
    # Flask's own converters (<int:x>) may already have produced the right type.
    if type(raw) is spec.converter.type or not spec.annotated:
        values[spec.name] = raw
        return
    try:
        values[spec.name] = spec.converter.from_text(str(raw))
    except Invalid as error:
        issues.extend(_issues(spec.key, "path", error))


class _Sources:
    """The non-path sources of one request, each parsed only when a parameter asks for it."""

    def __init__(self, request: Request, issues: list[ParamIssue]) -> None:
        self.request = request
        self.issues = issues
        self._body: Any = _UNSET
        self._sent = False
        self._reported = False
        self.form: MultiDict[str, str] | None = (
            request.form if request.mimetype in _FORM_TYPES else None
        )

    @property
    def body(self) -> Any:
        """The JSON document (``None`` when the request has none); parsed once."""
        if self._body is _UNSET:
            self._body = None
            self._sent = self.request.is_json and bool(self.request.get_data(cache=True))
            if self._sent:
                try:
                    self._body = self.request.get_json()
                except (BadRequest, RecursionError):  # nesting deeper than the parser goes
                    self._sent = False
                    self.issues.append(ParamIssue("body", "json", "a valid JSON document", None))
        return self._body

    @property
    def json(self) -> Mapping[str, Any] | None:
        """The body's top-level object; a body that is not one is reported once."""
        body = self.body
        if isinstance(body, dict):
            return body
        if self._sent and not self._reported:
            self._reported = True
            self.issues.append(ParamIssue("body", "json", "a JSON object", None))
        return None

    def _fields(self) -> Mapping[str, Any] | None:
        return self.json if self.request.is_json else None

    def lookup(self, spec: ParamSpec, values: dict[str, Any], issues: list[ParamIssue]) -> None:
        source, key = spec.source, spec.key
        if source == "body":
            self._json_value(spec, "body", self.body, values, issues, present=self.body is not None)
        elif (
            source in ("auto", "json") and (fields := self._fields()) is not None and key in fields
        ):
            self._json_value(spec, "json", fields[key], values, issues)
        elif source in ("auto", "form") and self.form is not None and key in self.form:
            self._text(spec, "form", self.form.getlist(key), values, issues)
        elif source in ("auto", "query") and key in self.request.args:
            self._text(spec, "query", self.request.args.getlist(key), values, issues)
        elif source == "header" and key in self.request.headers:
            self._text(spec, "header", self.request.headers.getlist(key), values, issues)
        elif source == "cookie" and key in self.request.cookies:
            self._text(spec, "cookie", self.request.cookies.getlist(key), values, issues)
        elif source == "file" and key in self.request.files:
            files = self.request.files.getlist(key)
            self._file(spec, files, values, issues)
        elif spec.default is not MISSING:
            values[spec.name] = spec.default
        else:
            where = _WHERE.get(source, "request")
            issues.append(
                ParamIssue(
                    key, where(self) if callable(where) else where, spec.converter.expected, None
                )
            )

    def _json_value(
        self,
        spec: ParamSpec,
        source: str,
        raw: Any,
        values: dict[str, Any],
        issues: list[ParamIssue],
        present: bool = True,
    ) -> None:
        if not present:
            if spec.default is not MISSING:
                values[spec.name] = spec.default
            else:
                issues.append(ParamIssue(spec.key, source, spec.converter.expected, None))
        elif raw is None and spec.nullable:
            values[spec.name] = None
        else:
            try:
                values[spec.name] = spec.converter.from_json(raw)
            except Invalid as error:
                issues.extend(_issues(spec.key, source, error))

    @staticmethod
    def _text(
        spec: ParamSpec,
        source: str,
        raws: list[str],
        values: dict[str, Any],
        issues: list[ParamIssue],
    ) -> None:
        converter = spec.converter
        try:
            if converter.multi and converter.from_texts is not None:
                values[spec.name] = converter.from_texts(raws)
            elif len(raws) != 1:
                # Several values for one scalar: refuse rather than guess which one counts.
                issues.append(ParamIssue(spec.key, source, "a single value", None))
            elif raws[0] == "" and spec.nullable and converter.type is not str:
                values[spec.name] = None
            else:
                values[spec.name] = converter.from_text(raws[0])
        except Invalid as error:
            issues.extend(_issues(spec.key, source, error))

    @staticmethod
    def _file(
        spec: ParamSpec, files: list[Any], values: dict[str, Any], issues: list[ParamIssue]
    ) -> None:
        if spec.converter.multi:
            values[spec.name] = files
        elif len(files) == 1:
            values[spec.name] = files[0]
        else:
            issues.append(ParamIssue(spec.key, "file", "a single file", None))

    def remaining(
        self, plan: BindingPlan, values: dict[str, Any], issues: list[ParamIssue]
    ) -> None:
        """Unconsumed query/form/JSON keys: into ``**kwargs``, or errors in strict mode."""
        extra: dict[str, Any] = {}
        for source, multi in (("query", self.request.args), ("form", self.form)):
            if multi is None:
                continue
            for key in multi:
                if key not in plan.keys:
                    items = multi.getlist(key)
                    extra.setdefault(key, items[0] if len(items) == 1 else items)
                    if plan.strict and not plan.var_keyword:
                        issues.append(ParamIssue(key, source, "no such parameter", None))
        for key, value in (self._fields() or {}).items():
            if key not in plan.keys:
                extra[key] = value
                if plan.strict and not plan.var_keyword:
                    issues.append(ParamIssue(key, "json", "no such parameter", None))
        if plan.var_keyword:
            for key, value in extra.items():
                if key.isidentifier() and key not in values:
                    values[key] = value


def _where_auto(sources: _Sources) -> str:
    if sources.json is not None:
        return "json or query"
    return "form or query" if sources.form is not None else "query"


_WHERE: dict[str, Any] = {
    "auto": _where_auto,
    "query": "query",
    "form": "form",
    "json": "json",
    "header": "header",
    "cookie": "cookie",
    "file": "file",
}


def _issues(key: str, source: str, error: Invalid) -> list[ParamIssue]:
    return [
        ParamIssue(_location(key, loc), source, expected, _echo(key, raw))
        for loc, expected, raw in error.problems
    ]


def _location(key: str, loc: tuple[str | int, ...]) -> str:
    text = key
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _echo(name: str, raw: Any) -> str | None:
    """A short, escaped rendering of a bad value; nothing for secret-looking parameters."""
    if raw is ABSENT or _SECRET_NAME.search(name):
        return None
    text = raw if isinstance(raw, str) else "null" if raw is None else repr(raw)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "..."
