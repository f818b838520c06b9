"""Locust users for ``bench/load.py``: random requests of the mix, every answer recorded.

Run by ``bench/load.py`` (``python -m locust -f bench/load_users.py --headless ...``), never
imported by it: locust monkeypatches the process with gevent. The mix comes in ``LOAD_PROBES``
(a JSON list of ``[method, path, bearer token or null, JSON body or null]``); at exit every
answer ``[probe index, sent, received, status, body]`` is written to ``LOAD_RECORDS``, times
from ``time.monotonic()`` (one clock for every process on Linux), status 0 for no answer.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from locust import FastHttpUser, constant, events, task

PROBES: list[list[Any]] = json.loads(os.environ.get("LOAD_PROBES", "[]"))
RECORDS: list[tuple[int, float, float, int, str]] = []


class Client(FastHttpUser):
    """One keep-alive connection, requests back to back."""

    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0

    @task
    def probe(self) -> None:
        index = random.randrange(len(PROBES))
        method, path, token, body = PROBES[index]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        sent = time.monotonic()
        with self.client.request(
            method, path, headers=headers, json=body, name=f"{method} {path}", catch_response=True
        ) as response:
            received = time.monotonic()
            status = response.status_code or 0
            if status == 0 or status >= 500:
                response.failure(f"status {status}")
            else:
                response.success()  # 401/403 are answers the oracle judges, not failures
            RECORDS.append((index, sent, received, status, response.text or ""))


@events.quitting.add_listener
def save(**_: Any) -> None:
    with open(os.environ["LOAD_RECORDS"], "w", encoding="utf-8") as output:
        json.dump(RECORDS, output)
