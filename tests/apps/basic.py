"""The WSGI test app: one route per behaviour under test, selected by the first PATH_INFO segment."""
import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

from payload import pattern

NOT_CALLABLE = 42  # for the "app object is not callable" test
STATE_DIR = os.environ.get("RGT_STATE_DIR") or tempfile.gettempdir()
LOOP_LIMIT = 1_000_000  # bounds every loop over the request body

_lock = threading.Lock()
_served = [0]
_local = threading.local()


def _q(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


def _int(q, name, default):
    return int(q.get(name, default))


def _respond(start_response, body, status="200 OK", ctype="text/plain", extra=()):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def _json(start_response, obj, status="200 OK"):
    return _respond(start_response, json.dumps(obj).encode(), status, "application/json")


def record(name, line):
    """Append a line to a file in the state dir (how the tests see what happened in a worker)."""
    with open(os.path.join(STATE_DIR, name), "a") as f:
        f.write(line + "\n")


class Recorded:
    """A response iterable whose close() is recorded as `<token> complete|partial`."""

    def __init__(self, token, chunks):
        self.token = token
        self.chunks = chunks
        self.finished = False

    def __iter__(self):
        yield from self.chunks
        self.finished = True

    def close(self):
        record("close.log", f"{self.token} {'complete' if self.finished else 'partial'}")


def hello(environ, start_response, q):
    return _respond(start_response, b"hello world")


def environ_view(environ, start_response, q):
    plain, types = {}, {}
    for key, value in environ.items():
        if isinstance(value, (str, int, bool)):
            plain[key] = value
        elif isinstance(value, tuple):
            plain[key] = list(value)
        else:
            types[key] = type(value).__name__
    caps = {
        "wsgi.input": [m for m in ("read", "readline", "readlines", "__iter__") if hasattr(environ["wsgi.input"], m)],
        "wsgi.errors": [m for m in ("write", "writelines", "flush") if hasattr(environ["wsgi.errors"], m)],
        "wsgi.file_wrapper": callable(environ.get("wsgi.file_wrapper")),
    }
    return _json(start_response, {
        "environ": plain, "types": types, "caps": caps,
        "environ_is_dict": type(environ) is dict,
        "nonstr_keys": [repr(k) for k in environ if not isinstance(k, str)],
        "nonstr_values": [k for k, v in environ.items() if "." not in k and not isinstance(v, str)],
    })


def _read_pieces(inp, method, n):
    if method == "read":
        return [inp.read()]
    if method == "read_minus1":
        return [inp.read(-1)]
    if method == "readlines":
        return inp.readlines()
    if method == "iter":
        return list(inp)
    if method == "mixed":  # one line, then n bytes, then the rest
        return [inp.readline(), inp.read(n), inp.read()]
    step = {"read_n": lambda: inp.read(n), "readline": inp.readline,
            "readline_size": lambda: inp.readline(n), "readlines_hint": lambda: inp.readlines(n)}[method]
    pieces = []
    for _ in range(LOOP_LIMIT):
        got = step()
        if not got:
            return pieces
        if method == "readlines_hint":
            pieces.extend(got)
        else:
            pieces.append(got)
    raise RuntimeError("wsgi.input never reached EOF")


def echo(environ, start_response, q):
    """The request body read with the wsgi.input method named by ?method=, as the response body."""
    inp = environ["wsgi.input"]
    pieces = _read_pieces(inp, q.get("method", "read"), _int(q, "n", 7))
    after = inp.read(16) + inp.readline()
    extra = [("X-Pieces", ",".join(str(len(p)) for p in pieces[:200])), ("X-After-Eof", str(len(after))),
             ("X-Piece-Types", ",".join(sorted({type(p).__name__ for p in pieces})))]
    return _respond(start_response, b"".join(pieces), ctype="application/octet-stream", extra=extra)


def consume(environ, start_response, q):
    """Reads the body in ?chunk= pieces, keeps none of it: JSON with size and sha256."""
    inp, size, digest = environ["wsgi.input"], 0, hashlib.sha256()
    for _ in range(LOOP_LIMIT):
        data = inp.read(_int(q, "chunk", 65536))
        if not data:
            break
        size += len(data)
        digest.update(data)
    return _json(start_response, {"bytes": size, "sha256": digest.hexdigest(), "pid": os.getpid()})


def stream(environ, start_response, q):
    """?chunks=N of ?size=M pattern bytes (chunk i seeded with i), no Content-Length."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (pattern(_int(q, "size", 10), i) for i in range(_int(q, "chunks", 3)))


def empty_chunks(environ, start_response, q):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"", b"a", b"", b"b", b""]


def empty(environ, start_response, q):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return []


def write_view(environ, start_response, q):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one-")
    write(b"two-")
    return [b"three"]


class _RecordingBytesIO(io.BytesIO):
    token = "?"

    def close(self):
        record("close.log", f"{self.token} filelike")
        super().close()


class _RecordingFileIO(io.FileIO):
    token = "?"

    def close(self):
        if not self.closed:
            record("close.log", f"{self.token} filelike")
        super().close()


def file_view(environ, start_response, q):
    """wsgi.file_wrapper over a real file (?kind=real) or a BytesIO without fileno (?kind=bytesio)."""
    size, token = _int(q, "size", 100_000), q.get("token", "file")
    data = pattern(size, 3)
    if q.get("kind", "real") == "real":
        fd, path = tempfile.mkstemp(dir=STATE_DIR, prefix="wrapped-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        filelike = _RecordingFileIO(path, "rb")
        os.unlink(path)
    else:
        filelike = _RecordingBytesIO(data)
    filelike.token = token
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("cl", "1") == "1":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](filelike, _int(q, "blksize", 8192))


def close_view(environ, start_response, q):
    """A response whose close() is recorded; ?mode=ok|raise|endless (endless: for disconnects)."""
    token, mode = q.get("token", "close"), q.get("mode", "ok")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if mode == "ok":
        return Recorded(token, [b"x" * 10] * 3)
    if mode == "raise":
        def chunks():
            yield b"first-chunk"
            raise RuntimeError(f"raise-in-iteration-{token}")
        return Recorded(token, chunks())
    return Recorded(token, (pattern(65536, i) for i in range(4000)))


def raise_view(environ, start_response, q):
    """Raises ?when=before|after start_response, or in iteration (iter, iter_cl) after a chunk."""
    when, token = q.get("when", "before"), q.get("token", "raise")
    if when == "before":
        raise RuntimeError(f"boom-before-{token}")
    if when == "after":
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise RuntimeError(f"boom-after-{token}")
    headers = [("Content-Type", "text/plain")]
    if when == "iter_cl":
        headers.append(("Content-Length", "100"))
    start_response("200 OK", headers)

    def chunks():
        yield b"first-chunk"
        raise RuntimeError(f"boom-iter-{token}")
    return chunks()


def badheader(environ, start_response, q):
    """A header with CR, LF or NUL (?char=) in its name or value (?part=)."""
    char = {"cr": "\r", "lf": "\n", "crlf": "\r\n", "nul": "\0"}[q.get("char", "crlf")]
    if q.get("part", "value") == "name":
        header = (f"X-Bad{char}X-Injected", "1")
    else:
        header = ("X-Bad", f"a{char}X-Injected: 1")
    return _respond(start_response, b"should not be sent", extra=[header])


def status_view(environ, start_response, q):
    """An answer with ?code= and no body (204, 304...)."""
    code = _int(q, "code", 204)
    reason = {204: "No Content", 304: "Not Modified"}.get(code, "Whatever")
    start_response(f"{code} {reason}", [("ETag", '"abc"')] if code == 304 else [])
    return []


def sleep_view(environ, start_response, q):
    """Sleeps ?ms= (after creating <token>.started in the state dir, so tests see it began)."""
    ms, token = _int(q, "ms", 100), q.get("token")
    if token:
        record(f"{token}.started", str(os.getpid()))
    deadline = time.monotonic() + ms / 1000
    for _ in range(ms // 10 + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(remaining, 0.01))
    return _respond(start_response, f"slept {ms}".encode())


def block(environ, start_response, q):
    """Waits (at most ?max_ms=) until the test creates <token>.release in the state dir.

    Records <token>.started first, so the test knows the request is in the app.
    """
    token = q.get("token", "block")
    record(f"{token}.started", str(os.getpid()))
    release_path = os.path.join(STATE_DIR, f"{token}.release")
    deadline = time.monotonic() + _int(q, "max_ms", 15000) / 1000
    released = False
    for _ in range(LOOP_LIMIT):
        released = os.path.exists(release_path)
        if released or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return _respond(start_response, b"released" if released else b"timeout")


def tlocal(environ, start_response, q):
    """A per-thread counter in threading.local, keyed by ?key=."""
    counts = getattr(_local, "counts", None)
    if counts is None:
        counts = _local.counts = {}
    key = q.get("key", "k")
    counts[key] = counts.get(key, 0) + 1
    return _json(start_response, {"count": counts[key], "thread": threading.get_ident(), "pid": os.getpid()})


def pid_view(environ, start_response, q):
    return _json(start_response, {"pid": os.getpid(), "thread": threading.get_ident(), "served": _served[0]})


def osenv(environ, start_response, q):
    return _json(start_response, {"value": os.environ.get(q.get("name", "")), "cwd": os.getcwd()})


def sr_twice(environ, start_response, q):
    """start_response called twice without exc_info: the second call must raise."""
    start_response("200 OK", [("Content-Type", "application/json")])
    try:
        start_response("201 Created", [("Content-Type", "application/json")])
    except Exception as exc:  # noqa: BLE001 - reporting which exception the server raised
        raised = type(exc).__name__
    else:
        raised = None
    return [json.dumps({"raised": raised}).encode()]


def exc_before(environ, start_response, q):
    """start_response with exc_info before any body: replaces the status and headers."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("replace me")
    except ValueError:
        start_response("500 Replaced", [("Content-Type", "text/plain"), ("X-Replaced", "1")], sys.exc_info())
    return [b"replaced"]


def exc_after(environ, start_response, q):
    """start_response with exc_info after the headers went out: must re-raise."""
    token = q.get("token", "exc")
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b"first-chunk"
        try:
            raise ValueError(f"exc-after-{token}")
        except ValueError:
            start_response("500 Too Late", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"NOT-RERAISED"
    return chunks()


def multi_headers(environ, start_response, q):
    return _respond(start_response, b"ok", extra=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Multi", "one")])


def latin1_header(environ, start_response, q):
    """A header value outside ASCII: WSGI's latin-1 str, byte 0xE9 on the wire."""
    return _respond(start_response, b"ok", extra=[("X-Latin", "caf\xe9")])


def big(environ, start_response, q):
    return _respond(start_response, pattern(_int(q, "size", 1 << 20), 5), ctype="application/octet-stream")


def errors_view(environ, start_response, q):
    errors = environ["wsgi.errors"]
    errors.write(f"wsgi-errors-marker-{q.get('token', 'x')}\n")
    errors.writelines(["second line\n"])
    errors.flush()
    return _respond(start_response, b"ok")


def _validated_inner(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    out = b"validated:" + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


_validated_app = validator(_validated_inner)


def validated(environ, start_response, q):
    """The request through wsgiref.validate.validator, its warnings turned into errors (-> 500)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", WSGIWarning)
        result = _validated_app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()
    return [body]


_kept = []


def keep(environ, start_response, q):
    """Keeps the request's callables past its end, as a leaky app might; `?only=write` keeps
    write() and wsgi.input but lets go of start_response and the environ."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    kept = [start_response] if q.get("only") != "write" else []
    _kept[:] = [write, environ["wsgi.input"], *kept]
    return iter([b"kept"])


def use_kept(environ, start_response, q):
    """Calls the callables `keep` kept: each must refuse, the old request being over."""
    old_write, old_input, *old_start_response = _kept
    calls = [lambda: old_write(b"junk"), lambda: old_input.read()]
    calls += [lambda: sr("200 OK", []) for sr in old_start_response]
    outcomes = []
    for call in calls:
        try:
            call()
            outcomes.append("ok")
        except Exception as e:  # noqa: BLE001 - the type is what the test checks
            outcomes.append(type(e).__name__)
    return _respond(start_response, " ".join(outcomes).encode())


ROUTES = {
    "hello": hello, "environ": environ_view, "echo": echo, "consume": consume, "stream": stream,
    "empty_chunks": empty_chunks, "empty": empty, "write": write_view, "file": file_view,
    "close": close_view, "raise": raise_view, "badheader": badheader, "status": status_view,
    "sleep": sleep_view, "block": block, "tlocal": tlocal,
    "pid": pid_view, "osenv": osenv, "sr_twice": sr_twice, "exc_before": exc_before,
    "exc_after": exc_after, "headers": multi_headers, "big": big, "errors": errors_view,
    "validated": validated, "keep": keep, "use_kept": use_kept, "latin1": latin1_header,
}


def application(environ, start_response):
    with _lock:
        _served[0] += 1
    route = ROUTES.get(environ.get("PATH_INFO", "").lstrip("/").split("/")[0])
    if route is None:
        return _respond(start_response, b"not found", "404 Not Found")
    return route(environ, start_response, _q(environ))
