"""A WSGI app counting its requests with prometheus_client in multiprocess mode (the way its
documentation sets it up under gunicorn): / counts, /metrics shows every worker's counts."""
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

REQUESTS = Counter("app_requests", "Requests served")
# Set on each request rather than at import: with --preload (gunicorn) or a zygote (rgunicorn)
# the import runs in a process that serves nothing, whose value would count as live.
LIVE = Gauge("app_live_workers", "Workers alive", multiprocess_mode="livesum")


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        LIVE.set(1)
        REQUESTS.inc()
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
