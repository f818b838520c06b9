"""Bind a request to a :class:`BindingPlan`, collecting every problem before answering."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Request
from werkzeug.datastructures import MultiDict

from ..errors import ParamIssue
from .plan import MISSING, BindingPlan, ParamSpec

#: Values of parameters with such names are never echoed back, even when invalid.
_SECRET_NAME = re.compile(r"pass|secret|token|key|auth|credential", re.IGNORECASE)
_ECHO_LIMIT = 40
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def bind(
    plan: BindingPlan, view_args: Mapping[str, Any], request: Request
) -> tuple[dict[str, Any], list[ParamIssue]]:
    """Converted values for the view, and the list of problems (empty when all is well)."""
    values: dict[str, Any] = {}
    issues: list[ParamIssue] = []
    body: _Body | None = None
    for spec in plan.params:
        if spec.name in view_args:
            _convert_path(spec, view_args[spec.name], values, issues)
            continue
        if body is None:
            body = _Body(request, issues)
        body.lookup(spec, values, issues)
    if plan.var_keyword:
        values.update((k, v) for k, v in view_args.items() if k not in plan.names)
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
    except ValueError:
        issues.append(_issue(spec, "path", raw))


class _Body:
    """The non-path sources of one request, parsed only when a parameter asks for them."""

    def __init__(self, request: Request, issues: list[ParamIssue]) -> None:
        self.args = request.args
        self.form: MultiDict[str, str] | None = None
        self.json: Mapping[str, Any] | None = None
        #: where a missing parameter was looked for, for the 400 details
        self.where = "query"
        if request.is_json:
            self.where = "json or query"
            data = request.get_json(silent=True)
            if isinstance(data, dict):
                self.json = data
            elif data is not None or request.get_data(cache=True):
                issues.append(ParamIssue("body", "json", "a JSON object", None))
        elif request.mimetype in _FORM_TYPES:
            self.form = request.form
            self.where = "form or query"

    def lookup(self, spec: ParamSpec, values: dict[str, Any], issues: list[ParamIssue]) -> None:
        if self.json is not None and spec.name in self.json:
            raw = self.json[spec.name]
            if raw is None and spec.nullable:
                values[spec.name] = None
                return
            try:
                values[spec.name] = spec.converter.from_json(raw)
            except ValueError:
                issues.append(_issue(spec, "json", raw))
            return
        for source, multi in (("form", self.form), ("query", self.args)):
            if multi is None or spec.name not in multi:
                continue
            raws = multi.getlist(spec.name)
            if len(raws) != 1:
                # Several values for one scalar: refuse rather than guess which one counts.
                issues.append(ParamIssue(spec.name, source, "a single value", None))
                return
            self._text(spec, source, raws[0], values, issues)
            return
        if spec.default is not MISSING:
            values[spec.name] = spec.default
        else:
            issues.append(ParamIssue(spec.name, self.where, spec.converter.expected, None))

    @staticmethod
    def _text(
        spec: ParamSpec, source: str, raw: str, values: dict[str, Any], issues: list[ParamIssue]
    ) -> None:
        if raw == "" and spec.nullable and spec.converter.type is not str:
            values[spec.name] = None
            return
        try:
            values[spec.name] = spec.converter.from_text(raw)
        except ValueError:
            issues.append(_issue(spec, source, raw))


def _issue(spec: ParamSpec, source: str, raw: Any) -> ParamIssue:
    return ParamIssue(spec.name, source, spec.converter.expected, _echo(spec.name, raw))


def _echo(name: str, raw: Any) -> str | None:
    """A short, escaped rendering of a bad value; nothing for secret-looking parameters."""
    if _SECRET_NAME.search(name):
        return None
    text = raw if isinstance(raw, str) else repr(raw)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "..."
