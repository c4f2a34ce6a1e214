"""A WSGI module whose import never ends when the file named by RGT_HANG_FLAG exists as it
starts: the zygote importing it must be killed once `timeout` passed, and the next one, started
after the flag goes, imports it at once."""
import os
import threading

_FLAG = os.environ.get("RGT_HANG_FLAG", "")
if _FLAG and os.path.exists(_FLAG):
    threading.Event().wait()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"imported"]
