"""The shared fixtures do what tests rely on: both attach styles, credentials per scheme, markers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask
import pytest

from conftest import Guarded
from flask_casbin_guard import CasbinGuard, CurrentUser, Flask


def test_guarded_app_decides_the_same_in_both_styles(guarded: Guarded) -> None:
    @guarded.route("/store/<int:sid>", ("store", "sid", "manager"))
    def store(sid: int, user: CurrentUser) -> dict[str, Any]:
        return {"sid": sid, "user": user}

    client = guarded.client()
    assert client.get("/store/7").status_code == 401
    for scheme in ("basic", "bearer"):
        answer = client.get("/store/7", headers=guarded.login(scheme, "bob"))
        assert (answer.status_code, answer.json) == (200, {"sid": 7, "user": "bob"})
        assert client.get("/store/1", headers=guarded.login(scheme, "bob")).status_code == 403
        # carol manages store 1 through her manager role
        assert client.get("/store/1", headers=guarded.login(scheme, "carol")).status_code == 200


def test_each_style_is_what_it_says(make_guarded: Callable[..., Guarded]) -> None:
    subclass = make_guarded("subclass")
    assert isinstance(subclass.app, Flask)
    assert subclass.app.extensions["casbin_guard"] is subclass.guard
    extension = make_guarded("extension")
    assert type(extension.app) is flask.Flask
    assert isinstance(extension.guard, CasbinGuard)
    with pytest.raises(ValueError, match="unknown attach style"):
        make_guarded("other")


def test_unknown_scheme_has_no_test_credentials(make_guarded: Callable[..., Guarded]) -> None:
    with pytest.raises(ValueError, match="no test credentials"):
        make_guarded().login("apikey", "alice")


def test_markers_follow_the_fixtures_used(request: pytest.FixtureRequest) -> None:
    # This test uses no service: neither marker may be on it.
    assert request.node.get_closest_marker("services") is None
    assert request.node.get_closest_marker("slow") is None


def test_service_fixture_marks_its_test(pytester_markers: list[str]) -> None:
    assert pytester_markers == ["services"]


@pytest.fixture
def pytester_markers(request: pytest.FixtureRequest) -> list[str]:
    """Markers the collection hook put on test_sync's Redis tests."""
    session = request.session
    marked = [item for item in session.items if "redis_url" in getattr(item, "fixturenames", ())]
    if not marked:
        pytest.skip("test_sync.py's Redis tests are not collected in this run")
    return sorted(
        {mark.name for item in marked for mark in item.iter_markers()} & {"services", "slow"}
    )
