"""HTTP client plumbing: raw sockets, a strict HTTP/1.x response parser, unix-socket http.client."""
import http.client
import json
import socket
import time

NO_BODY_STATUSES = (204, 304)


class HTTPResponseData:
    """A fully read response: status, reason, version, header list, body and how it was framed."""

    def __init__(self, status, reason, version, headers, body, framing, complete=True):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # list of (name, value), wire order
        self.body = body
        self.framing = framing  # "length", "chunked", "close", "none"
        self.complete = complete

    def __repr__(self):
        return (f"<{self.version} {self.status} {self.reason!r} {self.framing} "
                f"{len(self.body)}B{'' if self.complete else ' INCOMPLETE'}>")

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name, default=None):
        found = self.header_all(name)
        return found[0] if found else default

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("latin-1")

    @classmethod
    def from_http_client(cls, resp, method="GET"):
        body = resp.read()
        if resp.chunked:
            framing = "chunked"
        elif resp.getheader("Content-Length") is not None:
            framing = "length"
        elif method == "HEAD" or resp.status in NO_BODY_STATUSES:
            framing = "none"
        else:
            framing = "close"
        version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(resp.version, str(resp.version))
        return cls(resp.status, resp.reason, version, resp.getheaders(), body, framing)


class IncompleteResponse(Exception):
    """More bytes are needed to finish parsing the response."""


def _parse_head(buf):
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        raise IncompleteResponse()
    lines = buf[:end].split(b"\r\n")
    version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
    if not version.startswith("HTTP/") or not status.isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line!r}")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return version, int(status), reason, headers, end + 4


def _parse_chunked(buf, pos, partial=False):
    """Returns (body, end position); raises IncompleteResponse or ValueError.

    With `partial`, an unfinished body returns what arrived of it instead of raising.
    """
    body = bytearray()
    try:
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                raise IncompleteResponse()
            size = int(buf[pos:eol].split(b";")[0].strip(), 16)  # ValueError on garbage
            pos = eol + 2
            if size == 0:
                while True:  # trailers, then an empty line
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        raise IncompleteResponse()
                    line, pos = buf[pos:eol], eol + 2
                    if not line:
                        return bytes(body), pos
            body += buf[pos:pos + size]
            if len(buf) < pos + size + 2:
                raise IncompleteResponse()
            if buf[pos + size:pos + size + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            pos += size + 2
    except IncompleteResponse:
        if partial:
            return bytes(body), len(buf)
        raise


def parse_response(buf, method="GET", eof=False):
    """Parse one response from the start of `buf`: returns (HTTPResponseData, consumed bytes).

    Raises IncompleteResponse when more data is needed; at `eof` an unfinished body is
    returned with complete=False (a truncated response) instead.
    """
    version, status, reason, headers, pos = _parse_head(buf)

    def make(body, framing, complete=True):
        return HTTPResponseData(status, reason, version, headers, body, framing, complete)

    lower = {k.lower(): v for k, v in headers}
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return make(b"", "none"), pos
    if "chunked" in lower.get("transfer-encoding", "").lower():
        try:
            body, end = _parse_chunked(buf, pos)
        except IncompleteResponse:
            if eof:
                return make(_parse_chunked(buf, pos, partial=True)[0], "chunked", complete=False), len(buf)
            raise
        return make(body, "chunked"), end
    if "content-length" in lower:
        length = int(lower["content-length"])
        if len(buf) - pos < length:
            if eof:
                return make(bytes(buf[pos:]), "length", complete=False), len(buf)
            raise IncompleteResponse()
        return make(bytes(buf[pos:pos + length]), "length"), pos + length
    if not eof:
        raise IncompleteResponse()
    return make(bytes(buf[pos:]), "close"), len(buf)


def parse_responses(data, methods=("GET",)):
    """Parse every response in `data` (all bytes up to connection close), 1xx skipped.

    `methods` names the request method of each response in order (the last one repeats).
    """
    out, pos, i = [], 0, 0
    buf = bytes(data)
    while pos < len(buf):
        method = methods[min(i, len(methods) - 1)]
        resp, used = parse_response(buf[pos:], method, eof=True)
        pos += used
        if 100 <= resp.status < 200:
            continue
        out.append(resp)
        i += 1
    return out


def open_raw(address, timeout=20.0):
    """A connected socket to (host, port) or a unix socket path."""
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sock.settimeout(timeout)
    sock.connect(address)
    return sock


def recv_until_close(sock, timeout):
    """Read until EOF or the deadline; returns (bytes, closed_by_server)."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(data), False
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(data), False
        except ConnectionResetError:
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk


def send_ignoring_close(sock, data):
    """sendall that tolerates the server closing early (it may answer 4xx before reading all)."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def exchange_raw(address, data, timeout=10.0):
    """Open a socket, send `data`, read until close or `timeout`: returns (bytes, closed)."""
    with open_raw(address, timeout) as sock:
        send_ignoring_close(sock, data)
        return recv_until_close(sock, timeout)


def read_responses(sock, count, methods=("GET",), timeout=10.0):
    """Read `count` responses (1xx skipped) from a socket kept open.

    Returns (responses, closed): fewer than `count` when the server closed first. Fails at the
    deadline so a stuck server cannot hang a test.
    """
    buf = bytearray()
    out = []
    closed = False
    deadline = time.monotonic() + timeout
    while len(out) < count:
        try:
            method = methods[min(len(out), len(methods) - 1)]
            resp, used = parse_response(bytes(buf), method, eof=closed)
        except IncompleteResponse:
            if closed:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out reading responses; have {out}, buffer {bytes(buf[:300])!r}")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed = True
            buf += chunk
            continue
        del buf[:used]
        if not 100 <= resp.status < 200:
            out.append(resp)
        if closed and not buf:
            break
    return out, closed


def request_bytes(method, path, headers=None, body=b"", version="HTTP/1.1", host="127.0.0.1"):
    """Serialize a request; adds Host (1.1) and Content-Length (when a body is given)."""
    lines = [f"{method} {path} {version}"]
    names = {k.lower() for k, _ in (headers or {}).items()}
    if version == "HTTP/1.1" and "host" not in names:
        lines.append(f"Host: {host}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(parts):
    """Encode byte strings as a chunked request body (with the final 0-chunk)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix domain socket."""

    def __init__(self, path, timeout=20.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = open_raw(self.unix_path, self.timeout)
