"""App for lifecycle tests: reports its code version and pid, sleeps or spins on request, and can
refuse to import while a flag file exists (to make respawns fail)."""
import os
import time

FLAG = os.environ.get("RGT_BREAK_IMPORT_FLAG")
if FLAG and os.path.exists(FLAG):
    raise RuntimeError("import refused: flag file present")

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
