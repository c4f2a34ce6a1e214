"""App for the prometheus_client multiprocess test: counts its requests in a Counter and marks its
worker alive in a livesum Gauge, both created at import (so in the zygote, before any fork)."""
import os

from prometheus_client import Counter, Gauge

REQUESTS = Counter("app_requests", "Requests the app answered")
ALIVE = Gauge("app_workers_alive", "Workers that served", multiprocess_mode="livesum")


def application(environ, start_response):
    ALIVE.set(1)
    REQUESTS.inc()
    body = f"{os.getpid()} {os.environ.get('RGUNICORN_WORKER_ID')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
