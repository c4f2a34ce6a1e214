"""App for lifecycle tests: reports its code version and pid, sleeps or spins on request, and
makes every new worker die at once while a flag file exists (to cause a crash loop)."""
import os
import time

FLAG = os.environ.get("RGT_CRASH_FLAG")


def _crash_if_flagged():
    if FLAG and os.path.exists(FLAG):
        os._exit(13)


# Runs in each worker right after it is forked (from the zygote, or the master with --preload).
os.register_at_fork(after_in_child=_crash_if_flagged)

VERSION = "v1"


def _params(environ):
    return dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    params = _params(environ)
    if path == "/spin":
        while True:
            pass
    if path == "/sleep":
        time.sleep(int(params.get("ms", "100")) / 1000)
    if path == "/upload":
        size = 0
        while True:
            chunk = environ["wsgi.input"].read(4096)
            if not chunk:
                break
            size += len(chunk)
        body = f"{size}\n".encode()
    else:
        body = f"{VERSION} {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
