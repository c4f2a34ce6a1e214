"""How one worker thread drives its connections (issue 5's hot path, behaviour only).

A `sync` worker accepts with TCP_DEFER_ACCEPT and serves a request that came with its connection
before registering the socket with its reactor; a connection whose request is late, or comes in
pieces, is registered then. With one thread per worker, small complete responses are held until
the other ready connections had their turn and then sent back to back. None of this may change
what a client sees: these tests pin that down with raw sockets.
"""
import time

import pytest

from helpers.http import open_raw, parse_responses, read_responses, recv_until_close


def _get(path, *fields):
    lines = [b"GET " + path + b" HTTP/1.1", b"Host: example.com", *fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.fixture(scope="module")
def sync_server(module_server):
    return module_server("basic", "-w", "1")


@pytest.fixture(scope="module")
def one_thread_server(module_server):
    return module_server("basic", "-w", "1", "-k", "gthread", "--threads", "1")


def test_sync_serves_a_head_that_arrives_in_pieces(sync_server):
    request = _get(b"/hello")
    with open_raw(sync_server.address(), 10) as sock:
        sock.sendall(request[:7])
        # The worker must have accepted the connection and read the first piece before the rest
        # comes: that is the path being tested (a late, partial head).
        time.sleep(0.3)
        sock.sendall(request[7:])
        data, closed = recv_until_close(sock, 10)
    [response] = parse_responses(data)
    assert (response.status, response.body, closed) == (200, b"hello world", True)


def test_sync_serves_a_client_that_sends_only_after_the_accept_deferral(sync_server):
    with open_raw(sync_server.address(), 10) as sock:
        # TCP_DEFER_ACCEPT holds a silent connection back for a second; then it is accepted
        # without data and must still be served when the request comes.
        time.sleep(1.5)
        sock.sendall(_get(b"/hello"))
        data, closed = recv_until_close(sock, 10)
    [response] = parse_responses(data)
    assert (response.status, response.body, closed) == (200, b"hello world", True)


def test_one_thread_answers_pipelined_requests_in_order(one_thread_server):
    paths = [b"/hello", b"/status?code=404", b"/stream?chunks=2&size=3", b"/empty", b"/hello"]
    with open_raw(one_thread_server.address(), 10) as sock:
        sock.sendall(b"".join(_get(path) for path in paths))
        responses, _ = read_responses(sock, len(paths), timeout=10)
    assert [r.status for r in responses] == [200, 404, 200, 200, 200]
    assert responses[0].body == responses[4].body == b"hello world"
    assert responses[2].header("Transfer-Encoding") == "chunked"
    assert responses[3].body == b""


def test_one_thread_answers_a_long_pipeline_in_order(one_thread_server):
    # Longer than the worker's fair share of back-to-back requests, so it yields on the way.
    count = 20
    with open_raw(one_thread_server.address(), 10) as sock:
        sock.sendall(b"".join(_get(b"/environ?i=%d" % i) for i in range(count)))
        responses, _ = read_responses(sock, count, timeout=10)
    assert [r.json()["environ"]["QUERY_STRING"] for r in responses] == [
        f"i={i}" for i in range(count)]


def test_one_thread_keeps_many_connections_answered(one_thread_server):
    socks = [open_raw(one_thread_server.address(), 10) for _ in range(20)]
    try:
        for _ in range(3):
            for sock in socks:
                sock.sendall(_get(b"/hello"))
            for sock in socks:
                [response], _ = read_responses(sock, 1, timeout=10)
                assert (response.status, response.body) == (200, b"hello world")
    finally:
        for sock in socks:
            sock.close()
