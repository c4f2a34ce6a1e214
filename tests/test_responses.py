"""Responses (PEP 3333): framing, write(), file_wrapper, HEAD/204/304, close(), app errors, bad headers."""
import pytest

from apps.payload import pattern
from helpers.http import request_bytes


@pytest.fixture(scope="module")
def server(module_server):
    return module_server("basic")


def raw_get(server, path, method="GET", version="HTTP/1.1"):
    return server.raw_request(method, path, version=version)[0]


def test_content_length_from_app_is_used(server):
    resp = raw_get(server, "/hello")
    assert (resp.status, resp.body, resp.framing) == (200, b"hello world", "length")
    assert resp.header("Content-Length") == "11"
    assert resp.header("Transfer-Encoding") is None


def test_stream_without_length_is_chunked_on_http11(server):
    resp = raw_get(server, "/stream?chunks=5&size=1000")
    assert resp.framing == "chunked" and resp.complete
    assert resp.body == b"".join(pattern(1000, i) for i in range(5))


def test_stream_on_http10_is_close_delimited(server):
    resp = raw_get(server, "/stream?chunks=4&size=300", version="HTTP/1.0")
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"".join(pattern(300, i) for i in range(4))


def test_empty_chunks_do_not_end_the_body(server):
    resp = raw_get(server, "/empty_chunks")
    assert (resp.status, resp.body, resp.complete) == (200, b"ab", True)


def test_empty_iterable(server):
    resp = raw_get(server, "/empty")
    assert (resp.status, resp.body, resp.complete) == (200, b"", True)


def test_write_callable_then_iterable(server):
    assert server.get("/write").body == b"one-two-three"


def test_large_response(server):
    resp = server.get(f"/big?size={5 * 1024 * 1024}")
    assert resp.body == pattern(5 * 1024 * 1024, 5)


def test_repeated_response_headers_are_kept(server):
    resp = server.get("/headers")
    assert resp.header_all("Set-Cookie") == ["a=1", "b=2"]
    assert resp.header("X-Multi") == "one"


@pytest.mark.parametrize("kind", ["real", "bytesio"])
@pytest.mark.parametrize("cl", ["1", "0"])
def test_file_wrapper(server, kind, cl):
    token = f"fw-{kind}-{cl}"
    resp = server.get(f"/file?kind={kind}&size=300001&blksize=8192&cl={cl}&token={token}")
    assert resp.status == 200
    assert resp.body == pattern(300001, 3)
    if cl == "1":
        assert resp.header("Content-Length") == "300001"
    server.wait_for_record("close.log", f"{token} filelike")


@pytest.mark.parametrize("path", ["/hello", "/stream?chunks=3&size=10", "/file?kind=real&size=5000"])
def test_head_has_no_body(server, path):
    get = server.get(path)
    resp = raw_get(server, path, method="HEAD")
    assert resp.status == 200
    assert resp.header("Content-Length") == get.header("Content-Length")
    _, head_bytes = server.raw_request("HEAD", path)
    assert head_bytes.endswith(b"\r\n\r\n"), "nothing may follow the header block of a HEAD response"


@pytest.mark.parametrize("code", [204, 304])
def test_no_body_statuses(server, code):
    resp, data = server.raw_request("GET", f"/status?code={code}")
    assert data.startswith(b"HTTP/1.1 %d" % code)
    assert data.endswith(b"\r\n\r\n")
    assert resp.header("Transfer-Encoding") is None


def test_close_is_called_after_full_iteration(server):
    assert server.get("/close?mode=ok&token=ok1").body == b"x" * 30
    server.wait_for_record("close.log", "ok1 complete")


def test_close_is_called_when_iteration_raises(server):
    server.raw_request("GET", "/close?mode=raise&token=raise1")
    server.wait_for_record("close.log", "raise1 partial")


def test_close_is_called_when_client_disconnects(server):
    with server.raw_socket() as sock:
        sock.sendall(request_bytes("GET", "/close?mode=endless&token=gone1"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    server.wait_for_record("close.log", "gone1 partial")
    assert server.get("/hello").status == 200


def test_exception_before_start_response_is_500_and_worker_survives(server):
    pid = server.json("/pid")["pid"]
    resp = server.get("/raise?when=before&token=b1")
    assert resp.status == 500
    assert resp.body and b"Traceback" not in resp.body
    server.wait_for_log(r"boom-before-b1")
    assert "Traceback" in server.log_text()
    assert server.json("/pid")["pid"] == pid


def test_exception_after_start_response_before_body_is_500(server):
    assert server.get("/raise?when=after&token=a1").status == 500
    server.wait_for_log(r"boom-after-a1")


@pytest.mark.parametrize("when", ["iter", "iter_cl"])
def test_exception_after_headers_truncates(server, when):
    resp = raw_get(server, f"/raise?when={when}&token={when}1")
    assert resp.status == 200
    assert resp.body.startswith(b"first-chunk") or resp.body == b""
    assert not resp.complete, "the client must see the response cut short"
    server.wait_for_log(rf"boom-iter-{when}1")
    assert server.get("/hello").status == 200


def test_start_response_twice_without_exc_info_raises(server):
    resp = server.get("/sr_twice")
    assert resp.status == 200
    assert resp.json()["raised"] is not None


def test_exc_info_before_headers_sent_replaces_status(server):
    resp = server.get("/exc_before")
    assert (resp.status, resp.body, resp.header("X-Replaced")) == (500, b"replaced", "1")


def test_exc_info_after_headers_sent_reraises(server):
    resp, data = server.raw_request("GET", "/exc_after?token=ea1")
    assert b"NOT-RERAISED" not in data
    assert resp.status == 200 and not resp.complete
    server.wait_for_log(r"exc-after-ea1")


@pytest.mark.parametrize("part", ["name", "value"])
@pytest.mark.parametrize("char", ["cr", "lf", "crlf", "nul"])
def test_header_with_control_chars_is_500(server, part, char):
    resp, data = server.raw_request("GET", f"/badheader?part={part}&char={char}")
    assert resp.status == 500
    assert b"X-Injected" not in data
    assert b"should not be sent" not in data
    assert server.get("/hello").status == 200


@pytest.mark.parametrize(
    "keep, body, refusals",
    [
        ("/keep", b"body", b"RuntimeError ValueError RuntimeError"),
        # start_response is let go, and serves the next request, while its write() is kept.
        ("/keep?only=write", b"body", b"RuntimeError ValueError"),
        # Without a body, wsgi.input reads as empty after the request too, as gunicorn's does.
        ("/keep", b"", b"RuntimeError ok RuntimeError"),
    ],
)
def test_an_app_keeping_the_callables_does_not_disturb_the_next_request(
    server, keep, body, refusals
):
    for _ in range(3):
        kept = server.request("POST", keep, body=body)
        assert (kept.status, kept.body) == (200, b"kept")
        assert server.get("/hello").body == b"hello world"
        # The old request's write() and start_response refuse; its wsgi.input is spent.
        assert server.get("/use_kept").body == refusals
