"""Values of object permissions: refused when they hold path dot segments.

Casbin's pattern functions never normalize paths: ``keyMatch("file:public/../secret.txt",
"file:public/*")`` is true, and so are keyMatch2..5, globMatch and regexMatch with the usual
prefix rules. WSGI servers percent-decode the path before routing, so ``%2e%2e`` and ``..%2f``
arrive as ``..`` and ``../`` in a ``<path:...>`` value; query, form and JSON values can say
anything. A value the policy would read as being under one prefix while it names something
outside it is refused before Casbin, an object loader or the view sees it, for every object
parameter whatever its source or converter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ..config import GuardSettings
from ..errors import ParameterError, ParamIssue
from ..params.plan import BindingPlan
from .declarations import Declaration

#: what a refused value should have looked like, for the 400 details
EXPECTED = "a value without '.' or '..' path segments"
#: longest object value by default (``GUARD_MAX_OBJECT_LENGTH``): decisions are remembered by
#: their request values, so a megabyte value would pin a megabyte per denial
MAX_OBJECT_LENGTH = 1024

_SEPARATORS = re.compile(r"[/\\]")
_DOTS = frozenset({".", ".."})
#: percent-decoding rounds applied when looking for hidden dot segments (``%252e%252e``)
_DECODINGS = 3


def has_dot_segment(text: str) -> bool:
    """Whether ``text``, split at ``/`` or ``\\``, has a ``.`` or ``..`` segment.

    Also after percent-decoding it again: a view or a storage layer that decodes once more
    would otherwise meet the segments Casbin did not see.
    """
    for _ in range(_DECODINGS):
        if any(part in _DOTS for part in _SEPARATORS.split(text)):
            return True
        decoded = unquote(text)
        if decoded == text:
            return False
        text = decoded
    return True  # still changing after several decodings: nobody means that in good faith


def check_object_values(
    declaration: Declaration,
    plan: BindingPlan,
    values: Mapping[str, Any],
    view_args: Mapping[str, Any],
    settings: GuardSettings | None = None,
) -> None:
    """Refuse (400, every problem at once) object values with dot segments or too long.

    Checked on the converted value's text, which is what an object string is built from; a
    loader gets the value only once it passed.

    :param settings: where the longest value allowed is (``GUARD_MAX_OBJECT_LENGTH``).
    """
    max_length = settings.max_object_length if settings is not None else MAX_OBJECT_LENGTH
    issues = []
    for param in sorted(declaration.params):
        text = str(values[param])
        # The length first: the dot-segment check decodes the text up to three times.
        too_long = len(text) > max_length
        if too_long or has_dot_segment(text):
            source = "path" if param in view_args else _source(plan, param)
            shown = text[:80].encode("unicode_escape").decode("ascii")[:80]
            expected = f"at most {max_length} characters" if too_long else EXPECTED
            issues.append(ParamIssue(param, source, expected, shown))
    if issues:
        raise ParameterError(issues)


def _source(plan: BindingPlan, param: str) -> str:
    spec = next(spec for spec in plan.params if spec.name == param)
    return "request" if spec.source == "auto" else spec.source
