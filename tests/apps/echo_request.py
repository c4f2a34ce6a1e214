"""Front-door test app: records every call, then echoes what the request looked like to WSGI.

Every call appends one line to $RGT_STATE_DIR/hits first, so a test can prove that a request the
server must refuse never reached the app. The default answer is JSON: the CGI keys, every
HTTP_* / CONTENT_TYPE / CONTENT_LENGTH key, and the body read from wsgi.input (latin-1 text, one
char per byte). A read error is reported as "body_error" with the bytes that came before it.

Paths under /__rgt/ select a behaviour instead (the conformance corpus never uses them):
  /__rgt/noread                  answers without touching wsgi.input
  /__rgt/status?code=N           status N with a 5-byte body (that 204/304/HEAD must drop)
  /__rgt/length?declared=N&actual=M   Content-Length N, M body bytes
  /__rgt/badheader?kind=K        start_response with the invalid header or status named K
  /__rgt/hop?name=H&value=V      a hop-by-hop header set by the app
"""
import json
import os
import tempfile
from urllib.parse import parse_qs

STATE_DIR = os.environ.get("RGT_STATE_DIR") or tempfile.gettempdir()
CGI_KEYS = ("REQUEST_METHOD", "RAW_URI", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
            "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT")
READ_SIZE = 4096
MAX_BODY = 1 << 22

# Each kind: (status, headers). Values are what a buggy or hostile app might pass.
BAD_HEADERS = {
    "cr": ("200 OK", [("X-Bad", "a\rb")]),
    "lf": ("200 OK", [("X-Bad", "a\nb")]),
    "crlf": ("200 OK", [("X-Bad", "a\r\nSet-Cookie: injected=1")]),
    "nul": ("200 OK", [("X-Bad", "a\x00b")]),
    "nonlatin1": ("200 OK", [("X-Bad", "\u20ac")]),
    "name-space": ("200 OK", [("X Bad", "v")]),
    "name-colon": ("200 OK", [("X-Bad:", "v")]),
    "name-crlf": ("200 OK", [("X-Bad\r\nSet-Cookie", "v")]),
    "status-crlf": ("200 OK\r\nSet-Cookie: injected=1", []),
    "status-nonlatin1": ("200 \u20ac", []),
}


def record_hit(environ):
    with open(os.path.join(STATE_DIR, "hits"), "a") as f:
        f.write("%s %s\n" % (environ.get("REQUEST_METHOD"), environ.get("RAW_URI")))


def read_body(environ):
    """Reads wsgi.input piecewise, so bytes before an error are kept; returns (bytes, error)."""
    stream = environ["wsgi.input"]
    body = bytearray()
    try:
        while len(body) < MAX_BODY:
            piece = stream.read(READ_SIZE)
            if not piece:
                break
            body += piece
    except Exception as exc:  # noqa: BLE001 - the test wants to see any read failure
        return bytes(body), "%s: %s" % (type(exc).__name__, exc)
    return bytes(body), None


def echo(environ, start_response):
    body, error = read_body(environ)
    seen = {key: environ[key] for key in CGI_KEYS if key in environ}
    seen["url_scheme"] = environ["wsgi.url_scheme"]
    seen["headers"] = {k: v for k, v in environ.items()
                       if k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH")}
    seen["body"] = body.decode("latin-1")
    seen["body_error"] = error
    out = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


def application(environ, start_response):
    record_hit(environ)
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/__rgt/"):
        return echo(environ, start_response)
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    mode = path[len("/__rgt/"):]
    if mode == "noread":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if mode == "status":
        start_response("%s Whatever" % q["code"], [("Content-Type", "text/plain")])
        return [b"BODY!"]
    if mode == "length":
        start_response("200 OK", [("Content-Length", q["declared"])])
        return [b"x" * int(q["actual"])]
    if mode == "badheader":
        status, headers = BAD_HEADERS[q["kind"]]
        start_response(status, [("Content-Type", "text/plain")] + headers)
        return [b"should never be sent"]
    if mode == "hop":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2"),
                                  (q["name"], q["value"])])
        return [b"ok"]
    start_response("404 Not Found", [("Content-Length", "0")])
    return []
