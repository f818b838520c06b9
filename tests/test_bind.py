"""bind (params/bind.py): real Flask requests bound to compiled plans."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import flask
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_casbin_guard.errors import ParamIssue
from flask_casbin_guard.params.bind import bind
from flask_casbin_guard.params.plan import BindingPlan, compile_plan

APP = flask.Flask(__name__)


@contextmanager
def _request(path: str = "/", **kwargs: Any) -> Iterator[flask.Request]:
    with APP.test_request_context(path, **kwargs):
        yield flask.request


def _bind(
    view: Callable[..., Any],
    path: str = "/",
    view_args: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Any], list[ParamIssue]]:
    plan = compile_plan(view, "test.endpoint")
    with _request(path, **kwargs) as request:
        return bind(plan, view_args or {}, request)


def _int_view(sid: int) -> None:
    pass


def _typed_view(page: int, ratio: float, flag: bool, name: str) -> None:
    pass


# --- path -----------------------------------------------------------------------------------


def test_path_text_is_converted() -> None:
    values, issues = _bind(_int_view, view_args={"sid": "42"})
    assert issues == []
    assert values == {"sid": 42}
    assert type(values["sid"]) is int


def test_path_value_of_the_right_type_passes_through() -> None:
    values, issues = _bind(_int_view, view_args={"sid": 7})
    assert issues == []
    assert values == {"sid": 7}


def test_path_value_wins_over_query() -> None:
    values, issues = _bind(_int_view, "/?sid=9", view_args={"sid": "3"})
    assert issues == []
    assert values == {"sid": 3}


def test_bad_path_int_is_an_issue_with_source_path() -> None:
    values, issues = _bind(_int_view, view_args={"sid": "abc"})
    assert values == {}
    assert issues == [ParamIssue("sid", "path", "an integer", "abc")]


def test_path_bool_is_not_an_int() -> None:
    # type(True) is bool, not int: it goes through text conversion and fails.
    values, issues = _bind(_int_view, view_args={"sid": True})
    assert values == {}
    assert [(i.param, i.source) for i in issues] == [("sid", "path")]


def test_unannotated_path_value_keeps_what_flask_made() -> None:
    def view(sid, q="") -> None:  # type: ignore[no-untyped-def]
        pass

    values, issues = _bind(view, "/?q=5", view_args={"sid": 12})
    assert issues == []
    assert values == {"sid": 12, "q": "5"}
    assert type(values["sid"]) is int


def test_path_value_through_a_real_flask_rule() -> None:
    app = flask.Flask(__name__)

    @app.route("/store/<int:sid>/<name>")
    def show(sid: int, name: str, flag: bool = False) -> str:
        return ""

    plan = compile_plan(show, "show", path_params=["sid", "name"])
    with app.test_request_context("/store/42/widget?flag=true"):
        view_args = flask.request.view_args or {}
        assert view_args == {"sid": 42, "name": "widget"}
        bound = bind(plan, view_args, flask.request)
    assert bound == ({"sid": 42, "name": "widget", "flag": True}, [])


def test_var_keyword_receives_extra_path_values() -> None:
    def view(sid: int, **rest: Any) -> None:
        pass

    values, issues = _bind(view, "/?q=1", view_args={"sid": "5", "slug": "hello", "n": 3})
    assert issues == []
    # **kwargs takes the remaining values: extra path variables and unconsumed query keys.
    assert values == {"sid": 5, "slug": "hello", "n": 3, "q": "1"}


def test_extra_path_values_are_dropped_without_var_keyword() -> None:
    values, issues = _bind(_int_view, view_args={"sid": "5", "slug": "hello"})
    assert issues == []
    assert values == {"sid": 5}


# --- query ----------------------------------------------------------------------------------


def test_query_values_are_converted() -> None:
    values, issues = _bind(_typed_view, "/?page=3&ratio=-1.5&flag=TRUE&name=%C3%A9t%C3%A9")
    assert issues == []
    assert values == {"page": 3, "ratio": -1.5, "flag": True, "name": "été"}


def test_repeated_query_key_for_a_scalar_is_an_issue() -> None:
    values, issues = _bind(_int_view, "/?sid=1&sid=2")
    assert values == {}
    assert issues == [ParamIssue("sid", "query", "a single value", None)]


def test_missing_required_is_an_issue() -> None:
    values, issues = _bind(_int_view, "/")
    assert values == {}
    assert issues == [ParamIssue("sid", "query", "an integer", None)]


def test_default_used_when_missing() -> None:
    def view(page: int = 1, q: str = "all", flag: bool = False, maybe: int | None = None) -> None:
        pass

    values, issues = _bind(view, "/")
    assert issues == []
    assert values == {"page": 1, "q": "all", "flag": False, "maybe": None}


def test_given_value_overrides_default() -> None:
    def view(page: int = 1) -> None:
        pass

    assert _bind(view, "/?page=9") == ({"page": 9}, [])


def test_empty_text_for_optional_int_is_none() -> None:
    def view(page: int | None = 5, ratio: float | None = 1.0, flag: bool | None = True) -> None:
        pass

    values, issues = _bind(view, "/?page=&ratio=&flag=")
    assert issues == []
    assert values == {"page": None, "ratio": None, "flag": None}


def test_empty_text_for_optional_str_stays_empty_string() -> None:
    def view(q: str | None = None) -> None:
        pass

    assert _bind(view, "/?q=") == ({"q": ""}, [])


def test_empty_text_for_required_int_is_an_issue() -> None:
    values, issues = _bind(_int_view, "/?sid=")
    assert values == {}
    assert issues == [ParamIssue("sid", "query", "an integer", "")]


def test_every_problem_is_reported_in_parameter_order() -> None:
    values, issues = _bind(_typed_view, "/?flag=maybe&page=x&name=ok&ratio=nan")
    assert values == {"name": "ok"}
    assert issues == [
        ParamIssue("page", "query", "an integer", "x"),
        ParamIssue("ratio", "query", "a finite number", "nan"),
        ParamIssue("flag", "query", "a boolean (true, false, 1 or 0)", "maybe"),
    ]


def test_path_and_query_problems_are_reported_together() -> None:
    def view(sid: int, page: int, q: str) -> None:
        pass

    values, issues = _bind(view, "/?page=two", view_args={"sid": "one"})
    assert values == {}
    assert [(i.param, i.source, i.received) for i in issues] == [
        ("sid", "path", "one"),
        ("page", "query", "two"),
        ("q", "query", None),
    ]


# --- form -----------------------------------------------------------------------------------


def test_urlencoded_form_values() -> None:
    values, issues = _bind(
        _typed_view,
        method="POST",
        data="page=4&ratio=2.5&flag=0&name=bob",
        content_type="application/x-www-form-urlencoded",
    )
    assert issues == []
    assert values == {"page": 4, "ratio": 2.5, "flag": False, "name": "bob"}


def test_multipart_form_values() -> None:
    values, issues = _bind(
        _typed_view,
        method="POST",
        data={
            "page": "5",
            "ratio": "0.25",
            "flag": "1",
            "name": "carol",
            "upload": (io.BytesIO(b"content"), "a.txt"),
        },
        content_type="multipart/form-data",
    )
    assert issues == []
    assert values == {"page": 5, "ratio": 0.25, "flag": True, "name": "carol"}


def test_form_wins_over_query_and_query_fills_the_rest() -> None:
    def view(a: int, b: int) -> None:
        pass

    values, issues = _bind(
        view,
        "/?a=1&b=2",
        method="POST",
        data="a=10",
        content_type="application/x-www-form-urlencoded",
    )
    assert issues == []
    assert values == {"a": 10, "b": 2}


def test_bad_form_value_has_source_form_and_missing_says_form_or_query() -> None:
    values, issues = _bind(
        _typed_view,
        method="POST",
        data="page=x&ratio=1&flag=1",
        content_type="application/x-www-form-urlencoded",
    )
    assert values == {"ratio": 1.0, "flag": True}
    assert issues == [
        ParamIssue("page", "form", "an integer", "x"),
        ParamIssue("name", "form or query", "a string", None),
    ]


def test_repeated_form_key_is_an_issue() -> None:
    values, issues = _bind(
        _int_view,
        method="POST",
        data="sid=1&sid=2",
        content_type="application/x-www-form-urlencoded",
    )
    assert values == {}
    assert issues == [ParamIssue("sid", "form", "a single value", None)]


# --- JSON -----------------------------------------------------------------------------------


def test_json_fields_with_strict_types() -> None:
    values, issues = _bind(
        _typed_view, method="POST", json={"page": 3, "ratio": 2, "flag": True, "name": "x"}
    )
    assert issues == []
    assert values == {"page": 3, "ratio": 2.0, "flag": True, "name": "x"}
    assert type(values["ratio"]) is float


def test_json_fields_of_the_wrong_json_type_are_issues() -> None:
    values, issues = _bind(
        _typed_view, method="POST", json={"page": "3", "ratio": True, "flag": 1, "name": 5}
    )
    assert values == {}
    assert issues == [
        ParamIssue("page", "json", "an integer", "3"),
        ParamIssue("ratio", "json", "a finite number", "True"),
        ParamIssue("flag", "json", "a boolean (true, false, 1 or 0)", "1"),
        ParamIssue("name", "json", "a string", "5"),
    ]


def test_json_float_for_int_is_refused() -> None:
    values, issues = _bind(_int_view, method="POST", json={"sid": 1.0})
    assert values == {}
    assert issues == [ParamIssue("sid", "json", "an integer", "1.0")]


def test_json_integer_too_large_for_a_float_is_an_issue() -> None:
    def view(ratio: float) -> None:
        pass

    values, issues = _bind(
        view, method="POST", data='{"ratio": 1' + "0" * 400 + "}", content_type="application/json"
    )
    assert values == {}
    assert [(i.param, i.source) for i in issues] == [("ratio", "json")]


def test_json_null_for_optional() -> None:
    def view(page: int | None = 3, name: str | None = "x") -> None:
        pass

    values, issues = _bind(view, method="POST", json={"page": None, "name": None})
    assert issues == []
    assert values == {"page": None, "name": None}


def test_json_null_for_non_optional_is_an_issue() -> None:
    values, issues = _bind(_int_view, method="POST", json={"sid": None})
    assert values == {}
    assert issues == [ParamIssue("sid", "json", "an integer", "null")]


def test_json_missing_field_falls_back_to_query_then_default() -> None:
    def view(a: int, b: int = 7, c: int = 0) -> None:
        pass

    values, issues = _bind(view, "/?a=1&b=2", method="POST", json={"c": 3})
    assert issues == []
    assert values == {"a": 1, "b": 2, "c": 3}


def test_json_missing_required_says_json_or_query() -> None:
    values, issues = _bind(_int_view, method="POST", json={"other": 1})
    assert values == {}
    assert issues == [ParamIssue("sid", "json or query", "an integer", None)]


def test_malformed_json_body_is_one_body_issue() -> None:
    def view(a: int = 1, b: str = "x", c: bool = False) -> None:
        pass

    values, issues = _bind(view, method="POST", data='{"a": 1,', content_type="application/json")
    assert issues == [ParamIssue("body", "json", "a valid JSON document", None)]
    assert values == {"a": 1, "b": "x", "c": False}


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "3", "null"])
def test_non_object_json_body_is_a_body_issue(body: str) -> None:
    def view(a: int = 1) -> None:
        pass

    values, issues = _bind(view, method="POST", data=body, content_type="application/json")
    assert issues == [ParamIssue("body", "json", "a JSON object", None)]
    assert values == {"a": 1}


def test_empty_json_body_is_not_an_issue() -> None:
    def view(a: int = 1) -> None:
        pass

    assert _bind(view, method="POST", data="", content_type="application/json") == ({"a": 1}, [])


def test_body_is_not_read_when_only_path_params() -> None:
    values, issues = _bind(
        _int_view,
        view_args={"sid": "1"},
        method="POST",
        data="{not json",
        content_type="application/json",
    )
    assert (values, issues) == ({"sid": 1}, [])


# --- echo of received values ----------------------------------------------------------------


def test_received_value_is_truncated_to_40_characters() -> None:
    raw = "abcdefghij" * 10
    _, issues = _bind(_int_view, f"/?sid={raw}")
    assert issues[0].received == raw[:40] + "..."


def test_received_value_of_exactly_40_characters_is_whole() -> None:
    raw = "z" * 40
    _, issues = _bind(_int_view, f"/?sid={raw}")
    assert issues[0].received == raw


def test_received_value_is_escaped() -> None:
    _, issues = _bind(_int_view, "/?sid=1%0A2%1B%D9%A7")
    (issue,) = issues
    assert issue.received == "1\\n2\\x1b\\u0667"
    assert "\n" not in issue.received


def test_received_json_value_is_a_short_repr() -> None:
    _, issues = _bind(_int_view, method="POST", json={"sid": list(range(100))})
    (issue,) = issues
    assert issue.received is not None
    assert issue.received.startswith("[0, 1, 2")
    assert issue.received.endswith("...")
    assert len(issue.received) == 43


@pytest.mark.parametrize(
    "name", ["password", "passcode", "client_secret", "token", "api_key", "KeyId", "csrfToken"]
)
def test_secret_looking_parameters_never_echo_their_value(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def view({name}: int) -> None: pass", namespace)  # noqa: S102
    plan = compile_plan(namespace["view"], "secret")
    with _request(f"/?{name}=hunter2-not-a-number") as request:
        values, issues = bind(plan, {}, request)
    assert values == {}
    assert issues == [ParamIssue(name, "query", "an integer", None)]
    with _request("/", method="POST", json={name: "hunter2"}) as request:
        _, issues = bind(plan, {}, request)
    assert issues == [ParamIssue(name, "json", "an integer", None)]
    _, issues = bind(plan, {name: "hunter2"}, flask.Request.from_values("/"))
    assert issues == [ParamIssue(name, "path", "an integer", None)]


def test_ordinary_names_do_echo() -> None:
    # guards against a redaction pattern so broad it hides everything
    _, issues = _bind(_int_view, "/?sid=hunter2")
    assert issues[0].received == "hunter2"


# --- properties -----------------------------------------------------------------------------


def _mixed_view(
    a: int, b: float | None = None, c: bool = False, d: str = "", e: int | None = None
) -> None:
    pass


MIXED_PLAN: BindingPlan = compile_plan(_mixed_view, "mixed")

_QUERY_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]) | st.sampled_from("abcde=&%+;?#"),
    max_size=60,
)
_PAIRS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "x"]),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
        | st.sampled_from(["", "1", "-2", "1.5", "true", "0", "nan", "1e999"]),
    ),
    max_size=8,
)


def _check_outcome(values: dict[str, Any], issues: list[ParamIssue]) -> None:
    assert all(isinstance(issue, ParamIssue) for issue in issues)
    issue_params = [issue.param for issue in issues]
    assert len(issue_params) == len(set(issue_params))
    for spec in MIXED_PLAN.params:
        # each parameter ends up either converted or reported, never both, never neither
        assert (spec.name in values) != (spec.name in issue_params)
        if spec.name in values and values[spec.name] is not None:
            assert type(values[spec.name]) is spec.converter.type
    assert set(values) <= MIXED_PLAN.names
    order = [s.name for s in MIXED_PLAN.params]
    assert issue_params == sorted(issue_params, key=order.index)
    for issue in issues:
        assert issue.received is None or len(issue.received) <= 43


@settings(max_examples=150, deadline=None)
@given(query=_QUERY_TEXT)
def test_arbitrary_query_strings_never_raise(query: str) -> None:
    with _request("/", query_string=query) as request:
        values, issues = bind(MIXED_PLAN, {}, request)
    _check_outcome(values, issues)


@settings(max_examples=150, deadline=None)
@given(pairs=_PAIRS)
def test_arbitrary_query_pairs_never_raise(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import urlencode

    with _request("/", query_string=urlencode(pairs)) as request:
        values, issues = bind(MIXED_PLAN, {}, request)
    _check_outcome(values, issues)
    given_names = [name for name, _ in pairs]
    for name in ("a", "b", "c", "d", "e"):
        if given_names.count(name) > 1:
            assert any(i.param == name and i.expected == "a single value" for i in issues)


def test_json_roundtrip_of_the_mixed_plan() -> None:
    body = json.dumps({"a": 1, "b": None, "c": True, "d": "x", "e": 2})
    values, issues = _bind(_mixed_view, method="POST", data=body, content_type="application/json")
    assert issues == []
    assert values == {"a": 1, "b": None, "c": True, "d": "x", "e": 2}
