"""The other tenant of tests/faults/test_tenant_isolation.py: appends one reading at a time
(as an agent does) until SIGTERM, at most `MAX_APPENDS`, one every 20 ms or so, and prints
a line per append: when it was sent (time.monotonic(), the same clock as its parent's), how
long its answer took in seconds, and its status.

A process of its own, so that what it measures is the service: nothing the test's own
threads do (a case's receivers, its polling) can delay an append.

    python -m tests.faults.appender BASE_URL METRIC_ID   (the key in NEONOMALY_KEY)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import httpx

MAX_APPENDS = 20_000


def main(base_url: str, metric_id: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    headers = {"X-API-Key": os.environ["NEONOMALY_KEY"]}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        for i in range(MAX_APPENDS):
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                answer = http.post(
                    f"/api/metrics/{metric_id}/readings", json={"value": 1.0, "id": f"n{i}"}
                )
                status = str(answer.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            print(f"{started} {time.monotonic() - started} {status}", flush=True)
            time.sleep(0.02)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
