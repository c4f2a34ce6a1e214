"""A WSGI module whose import never ends while the file named by RGT_HANG_FLAG exists: the
zygote importing it must be killed once `timeout` passed, and a new one tried after the flag
goes."""
import os
import time

_FLAG = os.environ.get("RGT_HANG_FLAG", "")
for _ in range(100_000):
    if not _FLAG or not os.path.exists(_FLAG):
        break
    time.sleep(0.01)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"imported"]
