"""The seed style: ``Flask`` and ``Blueprint`` whose route decorators take ``authorize=``.

Thin layers over the extension: they only turn ``authorize=`` into a guarded view function.
"""

from __future__ import annotations

from typing import Any

import flask
from werkzeug.routing import Map, Rule

from .errors import ConfigurationError
from .extension import CasbinGuard
from .pipeline import guard_view, recheck_rule, route_of
from .types import ViewFunc

_MISSING: Any = object()


class Flask(flask.Flask):
    """A Flask app with a :class:`CasbinGuard` attached (``app.extensions["casbin_guard"]``).

    Every route must declare ``authorize=`` unless ``GUARD_DEFAULT_AUTHORIZE`` is set; the
    ``GUARD_*`` configuration is read lazily, at the first request or first call needing it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CasbinGuard().attach(self)

    @property
    def guard(self) -> CasbinGuard:
        guard: CasbinGuard = self.extensions["casbin_guard"]
        return guard

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ViewFunc | None = None,
        provide_automatic_options: bool | None = None,
        *,
        authorize: Any = _MISSING,
        **options: Any,
    ) -> None:
        if view_func is not None:
            endpoint = endpoint or view_func.__name__
            view_func = self._guarded(rule, endpoint, view_func, authorize)
        elif authorize is not _MISSING:
            raise ConfigurationError(f"endpoint {endpoint!r}: authorize= needs a view function")
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)

    def _guarded(self, rule: str, endpoint: str, view: ViewFunc, authorize: Any) -> ViewFunc:
        params = _rule_params(rule)
        if route_of(view) is not None:
            if authorize is not _MISSING:
                raise ConfigurationError(f"endpoint {endpoint!r}: authorization declared twice")
            recheck_rule(view, endpoint, params)
            return view
        if authorize is _MISSING:
            if endpoint == "static" or endpoint.endswith(".static"):
                return view  # decided per request by GUARD_OPEN_STATIC
            authorize = self.config.get("GUARD_DEFAULT_AUTHORIZE")
            if authorize is None:
                raise ConfigurationError(
                    f"endpoint {endpoint!r} ({rule}) has no authorize= declaration "
                    "and GUARD_DEFAULT_AUTHORIZE is not set"
                )
        return guard_view(view, authorize, endpoint, params)


class Blueprint(flask.Blueprint):
    """A Blueprint whose routes take ``authorize=``; works in both attach styles."""

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ViewFunc | None = None,
        provide_automatic_options: bool | None = None,
        *,
        authorize: Any = _MISSING,
        **options: Any,
    ) -> None:
        if authorize is not _MISSING:
            if view_func is None:
                raise ConfigurationError(f"endpoint {endpoint!r}: authorize= needs a view function")
            endpoint = endpoint or view_func.__name__
            view_func = guard_view(view_func, authorize, f"{self.name}.{endpoint}")
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)


def _rule_params(rule: str) -> list[str]:
    """The variable names of a URL rule (``/store/<int:sid>`` -> ``["sid"]``)."""
    parsed = Rule(rule)
    Map([parsed])  # binding a rule to a map is what parses its variables
    return sorted(parsed.arguments)
