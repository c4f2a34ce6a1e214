"""App for max_worker_memory: /hog?mb=N keeps N MiB more (touched, so it is resident and the
worker's own); any other path answers with the pid."""
import os

_kept = []


def application(environ, start_response):
    if environ["PATH_INFO"] == "/hog":
        mb = int(environ.get("QUERY_STRING", "mb=1").split("=")[1])
        _kept.append(bytearray(os.urandom(1024)) * (mb * 1024))
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
