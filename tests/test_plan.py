"""compile_plan (params/plan.py): a view's signature compiled into a BindingPlan.

This module uses ``from __future__ import annotations`` on purpose: every annotation below is a
string that compile_plan must resolve.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Optional

import pytest

from flask_casbin_guard.errors import ConfigurationError
from flask_casbin_guard.params.converters import SCALARS
from flask_casbin_guard.params.plan import (
    MISSING,
    BindingPlan,
    ParamSpec,
    check_path_params,
    compile_plan,
)


def _spec(plan: BindingPlan, name: str) -> ParamSpec:
    (spec,) = [s for s in plan.params if s.name == name]
    return spec


def _config_error(view: Callable[..., Any], endpoint: str, **kwargs: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        compile_plan(view, endpoint, **kwargs)
    return str(info.value)


# --- module-level views, resolved from string annotations -----------------------------------


def scalars_view(name, count: int, ratio: float, flag: bool, label: str) -> None:  # type: ignore[no-untyped-def]
    pass


def optional_view(a: int | None, b: Optional[float] = None, c: str | None = "x") -> None:  # noqa: UP045
    pass


def annotated_view(
    a: Annotated[int, "a page number"],
    b: Annotated[int | None, "maybe"] = None,
) -> None:
    pass


def defaults_view(page: int = 1, size: float = 2.5, verbose: bool = False, q: str = "") -> None:
    pass


def forward_view(page: PageNumber, limit: Limit = 10, extra: MaybeFloat = None) -> None:
    pass


# Defined after forward_view on purpose: resolved when the plan is compiled, not at def time.
PageNumber = int
Limit = Annotated[int, "at most 100"]
MaybeFloat = float | None


class Custom:
    pass


# --- supported annotations ------------------------------------------------------------------


def test_scalars_and_unannotated_default_to_str() -> None:
    plan = compile_plan(scalars_view, "scalars")
    assert [s.name for s in plan.params] == ["name", "count", "ratio", "flag", "label"]
    assert plan.names == frozenset({"name", "count", "ratio", "flag", "label"})
    assert plan.var_keyword is False
    kinds = {s.name: s.converter.type for s in plan.params}
    assert kinds == {"name": str, "count": int, "ratio": float, "flag": bool, "label": str}
    for spec in plan.params:
        assert spec.converter is SCALARS[spec.converter.type]
        assert spec.default is MISSING
        assert spec.nullable is False
    # only the unannotated one is marked so: its path values keep Flask's conversion
    assert {s.name for s in plan.params if not s.annotated} == {"name"}


def test_optional_forms_are_nullable() -> None:
    plan = compile_plan(optional_view, "optional")
    a, b, c = plan.params
    assert (a.name, a.converter.type, a.nullable, a.default) == ("a", int, True, MISSING)
    assert (b.name, b.converter.type, b.nullable, b.default) == ("b", float, True, None)
    assert (c.name, c.converter.type, c.nullable, c.default) == ("c", str, True, "x")


def test_annotated_is_unwrapped() -> None:
    plan = compile_plan(annotated_view, "annotated")
    a, b = plan.params
    assert a.converter.type is int
    assert a.nullable is False
    assert b.converter.type is int
    assert b.nullable is True
    assert b.default is None


def test_annotated_inside_optional_is_unwrapped() -> None:
    def view(a: Annotated[int, "meta"] | None = None) -> None:
        pass

    (spec,) = compile_plan(view, "annotated_optional").params
    assert spec.converter.type is int
    assert spec.nullable is True
    assert spec.default is None


def test_defaults_are_recorded() -> None:
    plan = compile_plan(defaults_view, "defaults")
    assert {s.name: s.default for s in plan.params} == {
        "page": 1,
        "size": 2.5,
        "verbose": False,
        "q": "",
    }
    assert all(not s.nullable for s in plan.params)


def test_forward_references_to_later_definitions_resolve() -> None:
    plan = compile_plan(forward_view, "forward")
    page, limit, extra = plan.params
    assert (page.converter.type, page.default, page.nullable) == (int, MISSING, False)
    assert (limit.converter.type, limit.default, limit.nullable) == (int, 10, False)
    assert (extra.converter.type, extra.default, extra.nullable) == (float, None, True)


def test_keyword_only_parameters_are_fine() -> None:
    def view(*, sid: int, q: str = "a") -> None:
        pass

    plan = compile_plan(view, "kwonly")
    assert [(s.name, s.converter.type) for s in plan.params] == [("sid", int), ("q", str)]


def test_var_keyword_sets_the_flag_and_is_not_a_param() -> None:
    def view(sid: int, **rest: Any) -> None:
        pass

    plan = compile_plan(view, "kwargs")
    assert plan.var_keyword is True
    assert plan.names == frozenset({"sid"})
    assert [s.name for s in plan.params] == ["sid"]


def test_no_parameters() -> None:
    def view() -> None:
        pass

    plan = compile_plan(view, "empty")
    assert plan.params == ()
    assert plan.names == frozenset()
    assert plan.var_keyword is False


# --- refused annotations --------------------------------------------------------------------


def test_none_default_without_optional_annotation_is_refused() -> None:
    def view(sid: int = None) -> None:  # type: ignore[assignment]  # noqa: RUF013
        pass

    message = _config_error(view, "store.show")
    assert "'store.show'" in message
    assert "'sid'" in message
    assert "int | None" in message


def test_none_default_on_unannotated_parameter_is_kept() -> None:
    # No annotation makes no type claim: None is a default like any other, as in Python.
    def view(q=None) -> None:  # type: ignore[no-untyped-def]
        pass

    (spec,) = compile_plan(view, "search").params
    assert (spec.default, spec.annotated, spec.converter.type) == (None, False, str)


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(lambda: _view_union, id="int|str"),
        pytest.param(lambda: _view_union_none, id="int|str|None"),
        pytest.param(lambda: _view_dict, id="dict"),
        pytest.param(lambda: _view_custom, id="custom-class"),
        pytest.param(lambda: _view_bytes, id="bytes"),
        pytest.param(lambda: _view_none, id="None"),
    ],
)
def test_unsupported_annotations_name_endpoint_and_parameter(
    view: Callable[[], Callable[..., Any]],
) -> None:
    message = _config_error(view(), "api.thing")
    assert "'api.thing'" in message
    assert "'target'" in message


def _view_union(target: int | str) -> None:
    pass


def _view_union_none(target: int | str | None = None) -> None:
    pass


def _view_dict(target: dict) -> None:  # type: ignore[type-arg]
    pass


def _view_custom(target: Custom) -> None:
    pass


def _view_bytes(target: bytes) -> None:
    pass


def _view_none(target: None) -> None:
    pass


def test_union_error_says_only_optional_is_supported() -> None:
    message = _config_error(_view_union, "u")
    assert "T | None" in message


def test_var_positional_is_refused() -> None:
    def view(*args: str) -> None:
        pass

    message = _config_error(view, "varargs")
    assert "'varargs'" in message
    assert "'args'" in message


def test_positional_only_is_refused() -> None:
    def view(sid: int, /, q: str = "") -> None:
        pass

    message = _config_error(view, "posonly")
    assert "'posonly'" in message
    assert "'sid'" in message


def test_unresolvable_annotation_names_the_endpoint() -> None:
    def view(x: int) -> None:
        pass

    view.__annotations__ = {"x": "NoSuchType", "return": "None"}
    message = _config_error(view, "broken.view")
    assert "'broken.view'" in message
    assert "NoSuchType" in message


def test_annotation_naming_a_local_class_cannot_be_resolved() -> None:
    class Local:
        pass

    def view(x: Local) -> None:
        pass

    message = _config_error(view, "local.view")
    assert "'local.view'" in message


def test_annotation_that_is_not_a_type_expression_is_refused() -> None:
    def view(x: int) -> None:
        pass

    view.__annotations__ = {"x": "1 +", "return": "None"}
    assert "'syntax'" in _config_error(view, "syntax")


# --- path parameters ------------------------------------------------------------------------


def test_path_params_present_in_signature() -> None:
    def view(sid: int, iid: int, q: str = "") -> None:
        pass

    plan = compile_plan(view, "items", path_params=["sid", "iid"])
    assert plan.names == frozenset({"sid", "iid", "q"})


def test_path_param_missing_from_signature_is_refused() -> None:
    def view(sid: int) -> None:
        pass

    message = _config_error(view, "store.item", path_params=["sid", "iid"])
    assert "'store.item'" in message
    assert "'iid'" in message
    assert re.search(r"path parameter 'iid'", message)


def test_path_param_missing_but_var_keyword_is_fine() -> None:
    def view(sid: int, **rest: Any) -> None:
        pass

    plan = compile_plan(view, "store.item", path_params=["sid", "iid"])
    assert plan.var_keyword is True
    assert plan.names == frozenset({"sid"})


def test_check_path_params_directly() -> None:
    def view(a: str) -> None:
        pass

    plan = compile_plan(view, "ep")
    check_path_params(plan, "ep", ["a"])
    check_path_params(plan, "ep", [])
    with pytest.raises(ConfigurationError, match=r"'ep'.*'b'"):
        check_path_params(plan, "ep", ["a", "b"])


def test_plan_is_frozen() -> None:
    plan = compile_plan(defaults_view, "defaults")
    with pytest.raises(AttributeError):
        plan.var_keyword = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        plan.params[0].default = 3  # type: ignore[misc]
