"""No-server baseline: call a WSGI app in a loop, in this process, and print calls per second.

Usage: inprocess.py DIR MODULE:CALLABLE PATH SECONDS
"""

import importlib
import io
import sys
import time


def environ(path):
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def call(app, path):
    statuses = []
    body = app(environ(path), lambda status, headers, exc_info=None: statuses.append(status))
    try:
        for _ in body:
            pass
    finally:
        if hasattr(body, "close"):
            body.close()
    if not statuses or not statuses[0].startswith("200"):
        raise SystemExit(f"GET {path}: {statuses}")


def main():
    directory, target, path, seconds = sys.argv[1:5]
    sys.path.insert(0, directory)
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name or "application")
    for _ in range(50):
        call(app, path)
    calls, started = 0, time.perf_counter()
    deadline = started + float(seconds)
    while time.perf_counter() < deadline:
        call(app, path)
        calls += 1
    print(f"{calls / (time.perf_counter() - started):.1f}")


if __name__ == "__main__":
    main()
