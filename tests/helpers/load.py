"""Steady HTTP load on loopback for lifecycle tests: keep-alive and Connection: close clients that
count every socket error and every non-2xx answer, bounded in time and in requests."""
import http.client
import threading
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)

    @property
    def failed(self):
        return self.sent - self.ok


class Load:
    """Threads hammering `path` until stop() (or max_seconds / max_requests) — use as a context."""

    def __init__(self, server, path="/", keepalive_clients=2, close_clients=2,
                 max_seconds=60.0, max_requests=200_000):
        self.server = server
        self.path = path
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(True,), daemon=True)
                         for _ in range(keepalive_clients)]
        self._threads += [threading.Thread(target=self._run, args=(False,), daemon=True)
                          for _ in range(close_clients)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        return self.result

    def wait_for_requests(self, count, timeout=20.0):
        """Poll until at least `count` requests were answered (load is really flowing)."""
        deadline = time.monotonic() + timeout
        while self.result.ok < count:
            assert time.monotonic() < deadline, f"load stalled at {self.result}"
            time.sleep(0.02)

    def _record(self, status=None, error=None):
        with self._lock:
            self.result.sent += 1
            if error is not None:
                self.result.errors.append(repr(error))
            else:
                self.result.statuses[status] = self.result.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    self.result.ok += 1
            return self.result.sent >= self.max_requests

    def _run(self, keepalive):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=20)
            try:
                headers = {} if keepalive else {"Connection": "close"}
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                done = self._record(status=resp.status)
                if not keepalive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                done = self._record(error=exc)
                conn.close()
                conn = None
            if done:
                break
        if conn is not None:
            conn.close()
