"""Request bodies through wsgi.input: every read method, chunked bodies, streaming without buffering."""
import hashlib

import pytest

from apps.payload import pattern
from helpers.http import chunked, parse_responses, request_bytes
from helpers.server import proc_kib

LINES = b"alpha\nbeta\n\ngamma-is-longer-than-seven\nlast-without-newline"


@pytest.fixture(scope="module")
def server(module_server):
    return module_server("basic")


def echo(server, method, body, n=7, headers=None):
    resp = server.request("POST", f"/echo?method={method}&n={n}", body=body, headers=headers)
    assert resp.status == 200, resp.body
    assert resp.header("X-After-Eof") == "0", "reading past the end must give b''"
    pieces = [int(p) for p in resp.header("X-Pieces").split(",") if p]
    return resp.body, pieces


def line_lengths(data, size=None):
    """Lengths of the pieces that readline(size) returns on `data`."""
    out = []
    for line in data.splitlines(keepends=True):
        while size and len(line) > size:
            out.append(size)
            line = line[size:]
        out.append(len(line))
    return out


@pytest.mark.parametrize("method", ["read", "read_minus1", "mixed"])
def test_whole_body(server, method):
    body, _ = echo(server, method, LINES)
    assert body == LINES


def test_read_n(server):
    body, pieces = echo(server, "read_n", LINES, n=7)
    assert body == LINES
    assert pieces == [7] * (len(LINES) // 7) + [len(LINES) % 7]


def test_readline(server):
    body, pieces = echo(server, "readline", LINES)
    assert body == LINES
    assert pieces == line_lengths(LINES)


def test_readline_size(server):
    body, pieces = echo(server, "readline_size", LINES, n=5)
    assert body == LINES
    assert pieces == line_lengths(LINES, 5)


@pytest.mark.parametrize("method", ["readlines", "iter"])
def test_lines(server, method):
    body, pieces = echo(server, method, LINES)
    assert body == LINES
    assert pieces == line_lengths(LINES)


def test_readlines_hint(server):
    # PEP 3333 lets the server ignore the hint; the lines must still come whole and in order.
    body, pieces = echo(server, "readlines_hint", LINES, n=8)
    assert body == LINES
    assert pieces == line_lengths(LINES)


def test_empty_body(server):
    body, pieces = echo(server, "read", b"")
    assert body == b""


def test_binary_body_with_all_bytes(server):
    data = bytes(range(256)) * 64
    body, _ = echo(server, "read", data)
    assert body == data


@pytest.mark.parametrize("method", ["read", "read_n", "readline", "iter"])
def test_chunked_body_arrives_dechunked(server, method):
    parts = [b"first\nsec", b"ond\n", b"x" * 3000, b"\nlast"]
    resp, _ = server.raw_request("POST", f"/echo?method={method}&n=100", {"Transfer-Encoding": "chunked"},
                                 chunked(parts))
    assert resp.status == 200
    assert resp.body == b"".join(parts)


def test_chunked_body_with_extension_and_trailer(server):
    body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    resp, _ = server.raw_request("POST", "/echo?method=read", {"Transfer-Encoding": "chunked"}, body)
    assert (resp.status, resp.body) == (200, b"hello world")


def test_large_body_sha256(server):
    data = pattern(3 * 1024 * 1024 + 17, 1)
    out = server.json("/consume?chunk=65536", method="POST", body=data)
    assert out == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pid": out["pid"]}


def _body_source(total, block):
    sent = 0
    while sent < total:
        piece = block[:min(len(block), total - sent)]
        sent += len(piece)
        yield piece


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_big_upload_streams_without_buffering(start_server, framing):
    """256 MiB through a sync worker must not grow its peak RSS by more than a few tens of MiB."""
    srv = start_server("basic")
    (worker,) = srv.worker_pids()
    srv.json("/consume", method="POST", body=b"warm-up" * 1000)  # app imported, buffers allocated
    before = proc_kib(worker, "VmHWM")
    total, block = 256 * 1024 * 1024, pattern(1024 * 1024, 2)
    conn = srv.connection(timeout=30)
    try:
        if framing == "length":
            conn.request("POST", "/consume?chunk=262144", body=_body_source(total, block),
                         headers={"Content-Length": str(total)})
        else:
            conn.request("POST", "/consume?chunk=262144", body=_body_source(total, block), encode_chunked=True)
        resp = conn.getresponse()
        out = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, out[:300]
    assert b'"bytes": %d' % total in out
    growth_mib = (proc_kib(worker, "VmHWM") - before) / 1024
    assert growth_mib < 48, f"worker peak RSS grew by {growth_mib:.0f} MiB for a 256 MiB upload"


def test_unread_body_is_not_parsed_as_a_request(server):
    """A body the app ignores must be skipped (or the connection closed), never read as a request."""
    smuggled = request_bytes("GET", "/hello")
    first = request_bytes("POST", "/hello", {}, smuggled * 50 + b"x" * 100_000)
    responses = parse_responses(server.raw(first + request_bytes("GET", "/hello", {"Connection": "close"})))
    assert responses[0].status == 200
    assert all(r.status == 200 and r.body == b"hello world" for r in responses)
    assert len(responses) <= 2
