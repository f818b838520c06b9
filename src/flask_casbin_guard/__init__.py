"""flask_casbin_guard: secure, declarative Casbin authorization for Flask."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .app import Blueprint as Blueprint
from .app import Flask as Flask
from .authn.base import Scheme as Scheme
from .authz.declarations import AUTH as AUTH
from .authz.declarations import CLOSE as CLOSE
from .authz.declarations import OPEN as OPEN
from .authz.declarations import ROUTE as ROUTE
from .config import GuardSettings as GuardSettings
from .errors import AccessDenied as AccessDenied
from .errors import AuthenticationFailed as AuthenticationFailed
from .errors import AuthenticationRequired as AuthenticationRequired
from .errors import ConfigurationError as ConfigurationError
from .errors import GuardError as GuardError
from .errors import GuardHTTPError as GuardHTTPError
from .errors import LoginUnavailable as LoginUnavailable
from .errors import ObjectAccessDenied as ObjectAccessDenied
from .errors import ObjectNotFound as ObjectNotFound
from .errors import ParameterError as ParameterError
from .errors import ParamIssue as ParamIssue
from .errors import PolicyError as PolicyError
from .errors import PolicyRejected as PolicyRejected
from .errors import PolicyUnavailable as PolicyUnavailable
from .extension import CasbinGuard as CasbinGuard
from .extension import current_user as current_user
from .identity import Identity as Identity
from .params.markers import Body as Body
from .params.markers import Cookie as Cookie
from .params.markers import CurrentUser as CurrentUser
from .params.markers import File as File
from .params.markers import Form as Form
from .params.markers import Header as Header
from .params.markers import Json as Json
from .params.markers import Param as Param
from .params.markers import Path as Path
from .params.markers import Query as Query

try:
    __version__ = version("flask-casbin-guard")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
