"""A WSGI app that records the pid of every process that imports it (state dir, `imports`)."""
import os

with open(os.path.join(os.environ["RGT_STATE_DIR"], "imports"), "a") as f:
    f.write(f"{os.getpid()}\n")


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
