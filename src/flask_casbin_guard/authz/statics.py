"""Static file endpoints: only those Flask registered for a static folder.

``GUARD_OPEN_STATIC`` exempts static files from deny by default. An endpoint merely named
``static`` or ``<blueprint>.static`` (``endpoint="files.static"``, a view a blueprint without a
static folder calls ``static``, an app built with ``static_folder=None``) is an ordinary view: it
stays refused unless a declaration covers it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask


def is_static_endpoint(app: Flask, endpoint: str, app_static: Callable[..., Any] | None) -> bool:
    """Whether ``endpoint`` serves a static folder of ``app`` or of one of its blueprints.

    :param app_static: the view Flask registered for the app's own static folder, taken when
        the guard attached (Flask's is a closure nothing else can be compared with).
    """
    view = app.view_functions.get(endpoint)
    if view is None:
        return False
    if endpoint == "static":
        return app_static is not None and view is app_static
    name, _, last = endpoint.rpartition(".")
    blueprint = app.blueprints.get(name) if last == "static" else None
    if blueprint is None or not blueprint.has_static_folder:
        return False
    # Blueprints register their bound send_static_file: equal when owner and function are.
    return bool(view == getattr(blueprint, "send_static_file", None))
