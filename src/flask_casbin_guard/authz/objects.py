"""Values of object permissions: their text, and refusal of values holding path dot segments.

Numbers are written canonically (:func:`object_text`): ``str`` tells ``7`` from ``7.0``,
``Decimal("7.00")`` and ``True``, and ``-0.0`` from ``0.0``, so with a deny rule on
``account:7`` the other spellings of seven would have named another object and passed.

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
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any
from urllib.parse import unquote

from ..config import GuardSettings
from ..errors import ConfigurationError, ParameterError, ParamIssue
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
#: numbers below 10**100 in magnitude (and above 10**-100) are written in plain digits
_PLAIN_EXPONENT = 100


def object_text(value: Any) -> str:
    """The text an object string is built from: one text for equal numbers.

    ``int``, ``bool``, ``float`` and ``Decimal`` values are written by value: integral ones as
    integers (``7``, ``0``, ``1000``: never ``7.0``, ``-0`` or ``1E+3``), others in their
    shortest plain form (``0.5``; a float by its shortest repr, so ``0.1`` is ``0.1``), and
    magnitudes beyond ``_PLAIN_EXPONENT`` in scientific notation (``1E+300``). Other values
    use ``str``.
    """
    if isinstance(value, int):  # bool and IntEnum too: True == 1
        return str(int(value))
    if isinstance(value, float):
        return _number_text(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _number_text(value)
    return str(value)


def _number_text(value: Decimal) -> str:
    if not value.is_finite():
        return str(value)  # the converters refuse these; a custom one gets "Infinity", "NaN"
    if value.is_zero():
        return "0"  # -0, 0.0, 0E+5
    # Enough precision that normalizing only drops trailing zeros, never rounds.
    exact = Context(prec=len(value.as_tuple().digits), Emax=MAX_EMAX, Emin=MIN_EMIN)
    value = value.normalize(exact)
    if -_PLAIN_EXPONENT < value.adjusted() < _PLAIN_EXPONENT:
        return format(value, "f")
    return format(value, "E")


def check_object_params(declaration: Declaration, plan: BindingPlan, endpoint: str) -> None:
    """Refuse, at registration, object parameters whose values cannot name objects: bools."""
    for spec in plan.params:
        if spec.name in declaration.params and spec.converter.type is bool:
            raise ConfigurationError(
                f"endpoint {endpoint!r}: object parameter {spec.name!r} is a bool, which names "
                "no object (True == 1): annotate it int or str"
            )


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
        text = object_text(values[param])
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
