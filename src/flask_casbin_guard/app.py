"""The seed style: ``Flask`` and ``Blueprint`` whose route decorators take ``authorize=``.

Thin layers over the extension: they only turn ``authorize=`` into a guarded view function.
"""

from __future__ import annotations

from typing import Any, cast

import flask
from flask.sansio.blueprints import BlueprintSetupState

from .classviews import declared_on, guard_class, view_class
from .errors import ConfigurationError
from .extension import EXTENSION_KEY, CasbinGuard
from .params.annotations import caller_namespace
from .pipeline import guard_view, recheck_rule, route_of
from .types import ViewFunc

_MISSING: Any = object()


class Flask(flask.Flask):
    """A Flask app with a :class:`CasbinGuard` attached (``app.extensions["casbin_guard"]``).

    Every route must declare ``authorize=`` unless ``GUARD_DEFAULT_AUTHORIZE`` is set; the
    ``GUARD_*`` configuration is read lazily, at the first request or first call needing it.
    Routes also take ``authn=`` (the only schemes they accept) and ``strict=True`` (refuse
    query, form or JSON keys the view does not take).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CasbinGuard().attach(self)

    @property
    def guard(self) -> CasbinGuard:
        guard: CasbinGuard = self.extensions[EXTENSION_KEY]
        return guard

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ViewFunc | None = None,
        provide_automatic_options: bool | None = None,
        *,
        authorize: Any = _MISSING,
        authn: Any = None,
        strict: bool = False,
        **options: Any,
    ) -> None:
        if view_func is not None:
            endpoint = endpoint or view_func.__name__
            view_func = self._guarded(rule, endpoint, view_func, authorize, authn, strict)
        elif authorize is not _MISSING:
            raise ConfigurationError(f"endpoint {endpoint!r}: authorize= needs a view function")
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)

    def _guarded(
        self, rule: str, endpoint: str, view: ViewFunc, authorize: Any, authn: Any, strict: bool
    ) -> ViewFunc:
        if route_of(view) is not None:
            if authorize is not _MISSING:
                raise ConfigurationError(f"endpoint {endpoint!r}: authorization declared twice")
            recheck_rule(view, rule)
            return view
        namespace = caller_namespace()
        if view_class(view) is not None:
            guarded = guard_class(
                view,
                endpoint,
                resolver=self.guard,
                rule=rule,
                spec=None if authorize is _MISSING else authorize,
                authn=authn,
                strict=strict,
                namespace=namespace,
                default=self.config.get("GUARD_DEFAULT_AUTHORIZE"),
                required=True,
            )
            return cast(ViewFunc, guarded)  # required=True: never None
        declared = declared_on(view)  # a function declared in a class body
        if authorize is _MISSING and declared is not None:
            authorize, authn, strict = declared.spec, declared.authn, declared.strict
            namespace = {**namespace, **declared.namespace}
        if authorize is _MISSING:
            if self._registers_static_folder(endpoint, view):
                return view  # decided per request by GUARD_OPEN_STATIC
            authorize = self.config.get("GUARD_DEFAULT_AUTHORIZE")
            if authorize is None:
                raise ConfigurationError(
                    f"endpoint {endpoint!r} ({rule}) has no authorize= declaration "
                    "and GUARD_DEFAULT_AUTHORIZE is not set"
                )
        return guard_view(
            view,
            authorize,
            endpoint,
            rule=rule,
            resolver=self.guard,
            strict=strict,
            authn=authn,
            namespace=namespace,
        )

    def _registers_static_folder(self, endpoint: str, view: ViewFunc) -> bool:
        """Flask registering a static folder's view; any other ``*.static`` needs a declaration.

        The app's own comes from ``flask.Flask.__init__``, before the guard attaches; a
        blueprint's is its bound ``send_static_file``.
        """
        if endpoint == "static":
            return EXTENSION_KEY not in self.extensions
        owner = getattr(view, "__self__", None)
        return (
            endpoint.endswith(".static")
            and isinstance(owner, flask.Blueprint)
            and owner.has_static_folder
            and view == owner.send_static_file
        )


class Blueprint(flask.Blueprint):
    """A Blueprint whose routes take ``authorize=`` (and ``authn=``, ``strict=``); both styles.

    Its views are compiled when the blueprint is registered on an app, so the full rule (with
    the ``url_prefix``) and the app's guard (its converters and providers) are both known.
    """

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: ViewFunc | None = None,
        provide_automatic_options: bool | None = None,
        *,
        authorize: Any = _MISSING,
        authn: Any = None,
        strict: bool = False,
        **options: Any,
    ) -> None:
        if authorize is _MISSING:
            if authn is not None or strict:
                raise ConfigurationError(f"endpoint {endpoint!r}: authn=/strict= need authorize=")
            super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)
            return
        if view_func is None:
            raise ConfigurationError(f"endpoint {endpoint!r}: authorize= needs a view function")
        name = endpoint or view_func.__name__
        if "." in name:
            raise ValueError("'endpoint' may not contain a dot '.' character.")
        view = view_func
        # Compiled at registration on an app, far from the factory that defined the view.
        namespace = caller_namespace()

        def register(state: BlueprintSetupState) -> None:
            guard = state.app.extensions.get(EXTENSION_KEY)
            if not isinstance(guard, CasbinGuard):
                raise ConfigurationError(
                    f"blueprint {self.name!r} declares authorize= but app "
                    f"{state.app.name!r} has no CasbinGuard"
                )
            full_rule = _join(state.url_prefix, rule)
            endpoint_name = f"{state.name_prefix}.{state.name}.{name}".lstrip(".")
            guarded: ViewFunc | None
            if view_class(view) is not None:
                guarded = guard_class(
                    view,
                    endpoint_name,
                    resolver=guard,
                    rule=full_rule,
                    spec=authorize,
                    authn=authn,
                    strict=strict,
                    namespace=namespace,
                    required=True,
                )
            else:
                guarded = guard_view(
                    view,
                    authorize,
                    endpoint_name,
                    rule=full_rule,
                    resolver=guard,
                    strict=strict,
                    authn=authn,
                    namespace=namespace,
                )
            if provide_automatic_options is not None:
                options["provide_automatic_options"] = provide_automatic_options
            state.add_url_rule(rule, name, guarded, **options)

        self.record(register)


def _join(prefix: str | None, rule: str) -> str:
    """The rule as Flask will register it (``BlueprintSetupState.add_url_rule``)."""
    if not prefix:
        return rule
    return "/".join((prefix.rstrip("/"), rule.lstrip("/"))) if rule else prefix
