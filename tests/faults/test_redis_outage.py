"""Redis stopped under a database store watched through Redis (issue "Hardening" §3 b).

While Redis is down, a committed change still reaches every worker through the version reads
(every ``GUARD_WATCHER_INTERVAL``); once it is back, every worker subscribes again by itself and
notifications carry changes in milliseconds again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.faults.support import Gunicorn, PrivateRedis, gunicorn, wait_until

from flask_casbin_guard import Flask

INTERVAL = 1.5
CHANNEL = "casbin_guard"


def propagation(server: Gunicorn, writer: Flask, user: str) -> float:
    """Give ``user`` the role through the Python API; seconds until every worker has it."""
    with writer.app_context():
        assert writer.guard.policies.add_role(user, "employee")
    committed = time.monotonic()
    wait_until(lambda: all(r[user] for r in server.all_workers().values()), 3 * INTERVAL, 0)
    return time.monotonic() - committed


def test_redis_down_falls_back_to_version_reads_and_notifications_resume(
    private_redis: PrivateRedis, app_env: dict[str, str], writer: Flask, logs: Path
) -> None:
    private_redis.ensure_running()
    env = {**app_env, "GUARD_WATCHER": private_redis.url, "GUARD_WATCHER_INTERVAL": str(INTERVAL)}
    writer.config["GUARD_WATCHER"] = private_redis.url  # its notify() publishes to Redis
    subscribed: Callable[[], bool] = lambda: private_redis.subscribers(CHANNEL) == 3  # noqa: E731
    with gunicorn(env, logs / "gunicorn.log") as server:
        server.all_workers()
        wait_until(subscribed, 10)
        notified = propagation(server, writer, "alice")
        # Resolution: one sweep of concurrent requests (~0.3-0.6 s) to see the change.
        assert notified < 1.2, notified

        private_redis.stop()
        time.sleep(0.3)
        polled = propagation(server, writer, "bob")  # the publish fails: logged, not raised
        # Within one interval, plus a sweep of requests to see it.
        assert polled < INTERVAL + 1.2, polled

        private_redis.start()
        restarted = time.monotonic()
        resubscribed = wait_until(subscribed, 20)
        again = propagation(server, writer, "carol")
        assert again < 1.2, again
        text = server.text()
    assert "Traceback" not in text
    assert text.count("the connection failed") == 3, text  # once per worker, not per retry
    print(
        f"\nRedis: notified {notified:.3f} s; down: {polled:.2f} s (interval {INTERVAL} s); "
        f"resubscribed {resubscribed:.2f} s after restart "
        f"({time.monotonic() - restarted:.2f} s ago), then {again:.3f} s"
    )
