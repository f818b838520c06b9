"""Small helpers shared by the tests (imported as ``helpers``)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

JWT_SECRET = "test-secret-that-is-at-least-32-bytes-long!"

#: RBAC with domains (tenants), exact objects
DOMAIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""


def basic(login: str, password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header."""
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    """An ``Authorization: Bearer`` header."""
    return {"Authorization": f"Bearer {token}"}


class WaitTimeout(AssertionError):
    """A condition awaited by :func:`wait_until` did not come true in time: a test failure.

    An ``AssertionError``, not a ``TimeoutError``: the latter is an ``OSError``, which the
    callers that retry on connection errors would take for one and swallow.
    """


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    describe: str | Callable[[], str],
    *,
    step: float = 0.05,
    retry_on: tuple[type[Exception], ...] = (),
) -> float:
    """Poll ``condition()`` until it returns a true value; the seconds that took.

    Never a fixed sleep: the wait ends as soon as the condition holds, and ``timeout`` only
    bounds how long a broken run takes to fail. It fails with :class:`WaitTimeout` naming what
    was awaited (``describe``, or what it returns when called at the deadline) and what was
    last seen: the condition's last false value, or the last exception from ``retry_on`` (a
    server that is still starting).

    :param step: seconds between two polls (0: back to back, for conditions that take time).
    """
    start = time.monotonic()
    deadline = start + timeout
    polls = 0
    while True:
        polls += 1
        try:
            last: object = condition()
        except retry_on as error:
            last = error
        else:
            if last:
                return time.monotonic() - start
        if time.monotonic() >= deadline:
            what = _describe(describe)
            seen = f"{type(last).__name__}: {last}" if isinstance(last, Exception) else repr(last)
            raise WaitTimeout(
                f"waited {time.monotonic() - start:.1f} s (limit {timeout:g} s, {polls} polls) "
                f"for {what}; last seen: {seen}"
            )
        time.sleep(min(step, max(deadline - time.monotonic(), 0.0)))


def _describe(describe: str | Callable[[], str]) -> str:
    if not callable(describe):
        return describe
    try:
        return describe()
    except Exception as error:  # the failure message must still come out, the cause with it
        return f"(describing the state failed: {type(error).__name__}: {error})"


def timed(request: Callable[[], Any]) -> float:
    """Seconds ``request()`` took."""
    started = time.perf_counter()
    request()
    return time.perf_counter() - started


def within(deadline: float, request: Callable[[], Any]) -> float | None:
    """The time ``request`` took in a thread, or ``None`` when it outlived ``deadline`` (a DoS
    attack must not hang the suite: the thread is left behind, as a daemon)."""
    took: list[float] = []
    worker = threading.Thread(target=lambda: took.append(timed(request)), daemon=True)
    worker.start()
    worker.join(deadline)
    return took[0] if took else None
