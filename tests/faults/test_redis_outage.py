"""Redis stopped under a database store watched through Redis (issue "Hardening" §3 b).

While Redis is down, a committed change still reaches every worker through the version reads
(every ``GUARD_WATCHER_INTERVAL``); once it is back, every worker subscribes again by itself and
notifications carry changes in milliseconds again.

Every wait is for a condition (subscriptions counted by Redis, outages logged by each worker,
the policy version each worker reports), bounded by a deadline. Propagation delays are measured
inside the workers (:mod:`tests.faults.fault_app` reports when each reloaded, on the clock the
test reads too), so a loaded machine slows the requests that look but not the measurement.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.faults.support import BOOT_TIMEOUT, Gunicorn, PrivateRedis, gunicorn

from flask_casbin_guard import Flask
from flask_casbin_guard.sync.thread import BACKOFF_MAX, BACKOFF_START
from helpers import wait_until

INTERVAL = 2.5
CHANNEL = "casbin_guard"
WORKERS = 3
#: a notification reaches a worker in milliseconds; this leaves room for a loaded machine, and
#: the version reads alone (every INTERVAL) would pass it in all three workers at once only
#: about once in forty runs
NOTIFIED = 0.75
#: what a version read adds to INTERVAL on a loaded machine: its thread's turn, then the reload
READ_SLACK = 1.5
#: a change's way to the workers when it is slower than it should be: long enough for a loaded
#: machine, short enough for a broken sync to fail in a reasonable time
PROPAGATION_TIMEOUT = 4 * INTERVAL + 10


def propagation(server: Gunicorn, writer: Flask, user: str) -> dict[int, float]:
    """Give ``user`` the role through the Python API; seconds until each worker reloaded."""
    with writer.app_context():
        policies = writer.guard.policies  # loaded before the clock starts: only the commit counts
        started = time.monotonic()
        assert policies.add_role(user, "employee")
        version = policies.version
    probes: dict[int, dict[str, Any]] = {}

    def everyone_reloaded() -> bool:
        probes.update(server.probes())
        return all(p["version"] == version and p["employee"][user] for p in probes.values())

    wait_until(everyone_reloaded, PROPAGATION_TIMEOUT,
               lambda: f"every worker on version {version} (with {user}): {probes}", step=0)  # fmt: skip
    return {pid: p["reloaded"] - started for pid, p in probes.items()}


def test_redis_down_falls_back_to_version_reads_and_notifications_resume(
    private_redis: PrivateRedis, app_env: dict[str, str], writer: Flask, logs: Path
) -> None:
    private_redis.ensure_running()
    env = {**app_env, "GUARD_WATCHER": private_redis.url, "GUARD_WATCHER_INTERVAL": str(INTERVAL)}
    writer.config["GUARD_WATCHER"] = private_redis.url  # its notify() publishes to Redis

    def subscribed() -> bool:
        return private_redis.subscribers(CHANNEL) == WORKERS

    def subscriptions() -> str:
        return f"{WORKERS} subscribers to {CHANNEL!r}; clients: {private_redis.clients()}"

    with gunicorn(env, logs / "gunicorn.log", WORKERS) as server:
        # Every worker has served a request, which starts its watcher: it subscribes at once.
        server.all_workers()
        wait_until(subscribed, BOOT_TIMEOUT, subscriptions)
        notified = propagation(server, writer, "alice")
        assert max(notified.values()) < NOTIFIED, notified

        private_redis.stop()
        stopped = time.monotonic()

        def every_watcher_lost_redis() -> bool:
            return server.text().count("the connection failed") >= WORKERS

        wait_until(every_watcher_lost_redis, BOOT_TIMEOUT,
                   lambda: f"each worker to log its lost connection:\n{server.text()}")  # fmt: skip
        polled = propagation(server, writer, "bob")  # the publish fails: logged, not raised
        # Within one interval of the commit: the next version read of each worker.
        assert max(polled.values()) < INTERVAL + READ_SLACK, polled

        private_redis.start()
        restarted = time.monotonic()
        # Each watcher retries with backoff (0.5 s, doubled per failure): its next attempt
        # comes at most one outage's length (capped) after the restart. Waiting that long, with
        # room for a loaded machine, is the whole wait: a watcher that gave up fails here.
        backoff = min(restarted - stopped + BACKOFF_START, BACKOFF_MAX)
        resubscribed = wait_until(subscribed, backoff + 15, subscriptions)
        again = propagation(server, writer, "carol")
        assert max(again.values()) < NOTIFIED, again
        text = server.text()
    assert "Traceback" not in text
    assert text.count("the connection failed") == WORKERS, text  # once per worker, not per retry
    print(
        f"\nRedis: notified in {max(notified.values()):.3f} s; down: {max(polled.values()):.2f} s "
        f"(interval {INTERVAL} s); resubscribed {resubscribed:.2f} s after the restart "
        f"(down {restarted - stopped:.2f} s), then notified in {max(again.values()):.3f} s"
    )
