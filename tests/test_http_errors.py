"""Malformed and over-limit requests: 400/414/431 before the app runs, and the worker keeps serving."""
import pytest

from helpers.http import parse_responses, request_bytes

HOST = b"Host: x\r\n"


@pytest.fixture(scope="module")
def server(module_server):
    return module_server("basic", "--limit-request-line", "200", "--limit-request-fields", "20",
                         "--limit-request-field_size", "300")


def served(server):
    """(pid, requests the app saw so far in that worker, this one included)."""
    out = server.json("/pid")
    return out["pid"], out["served"]


def answer_and_app_calls(server, data):
    """Send raw bytes; returns (the response, whether the app was called for them)."""
    pid, before = served(server)
    responses = parse_responses(server.raw(data, timeout=10))
    assert served(server) == (pid, before + 1), "the worker must survive and the app not be called"
    assert len(responses) == 1, responses
    return responses[0]


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"G(T /hello HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /hello HTTX/1.1\r\n" + HOST + b"\r\n",
    b"GET /hello HTTP/1.1\r\n" + HOST + b"NoColonHere\r\n\r\n",
    b"GET /hello HTTP/1.1\r\n" + HOST + b"Bad Name: v\r\n\r\n",
    b"GET /hello HTTP/1.1\r\n" + HOST + b"X-Nul: a\x00b\r\n\r\n",
    b"POST /hello HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n",
    b"POST /hello HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
    b"POST /hello HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
], ids=["garbage", "no-target", "bad-method", "bad-version", "no-colon", "space-in-name", "nul-in-value",
        "cl-not-number", "cl-negative", "cl-conflict"])
def test_malformed_request_is_400(server, data):
    assert answer_and_app_calls(server, data).status == 400


def test_request_line_over_limit_is_414(server):
    path = "/hello?" + "a" * 300
    assert answer_and_app_calls(server, request_bytes("GET", path, {"Connection": "close"})).status == 414


def test_too_many_headers_is_431(server):
    headers = {f"X-H{i}": "v" for i in range(30)}
    assert answer_and_app_calls(server, request_bytes("GET", "/hello", headers)).status == 431


def test_header_over_size_limit_is_431(server):
    data = request_bytes("GET", "/hello", {"X-Big": "v" * 1000})
    assert answer_and_app_calls(server, data).status == 431


def test_requests_under_the_limits_pass(server):
    headers = {f"X-H{i}": "v" * 100 for i in range(10)}
    resp = server.get("/hello?" + "a" * 100, headers=headers)
    assert (resp.status, resp.body) == (200, b"hello world")


def test_connection_closed_without_request(server):
    pid, before = served(server)
    with server.raw_socket():
        pass
    with server.raw_socket() as sock:
        sock.sendall(b"GET /hel")  # half a request, then hang up
    assert served(server) == (pid, before + 1)
