"""Worker models: sync closes after each response; gthread keeps alive, pipelines, runs threads side by side."""
import json

import pytest

from helpers.http import parse_responses, read_responses, recv_until_close, request_bytes


@pytest.fixture(scope="module")
def sync_server(module_server):
    return module_server("basic")


@pytest.fixture(scope="module")
def gthread(module_server):
    return module_server("basic", "--threads", "2", "--keep-alive", "10")


def test_worker_type_is_logged(sync_server, gthread):
    assert "Using worker: sync" in sync_server.log_text()
    assert "Using worker: gthread" in gthread.log_text()


def test_sync_closes_after_each_response(sync_server):
    two = request_bytes("GET", "/hello") + request_bytes("GET", "/hello")
    responses = parse_responses(sync_server.raw(two))
    assert len(responses) == 1
    assert responses[0].body == b"hello world"
    assert (responses[0].header("Connection") or "").lower() == "close"


def test_sync_is_not_multithreaded(sync_server):
    assert sync_server.json("/environ")["environ"]["wsgi.multithread"] is False


def test_gthread_is_multithreaded(gthread):
    assert gthread.json("/environ")["environ"]["wsgi.multithread"] is True


def test_k_gthread_selects_gthread_with_one_thread(start_server):
    srv = start_server("basic", "-k", "gthread")
    assert "Using worker: gthread" in srv.log_text()
    assert srv.json("/environ")["environ"]["wsgi.multithread"] is True


def test_gthread_keep_alive_reuses_the_connection(gthread):
    conn = gthread.connection()
    try:
        ports = set()
        for _ in range(3):
            conn.request("GET", "/environ")
            resp = conn.getresponse()
            assert resp.status == 200
            assert (resp.getheader("Connection") or "").lower() != "close"
            ports.add(json.loads(resp.read())["environ"]["REMOTE_PORT"])
    finally:
        conn.close()
    assert len(ports) == 1, "all three requests must arrive on the same client connection"


def test_gthread_pipelined_requests_are_answered_in_order(gthread):
    requests = [
        ("GET", request_bytes("GET", "/environ?n=1")),
        ("POST", request_bytes("POST", "/echo?method=read", {}, b"posted body")),
        ("GET", request_bytes("GET", "/status?code=204")),
        ("HEAD", request_bytes("HEAD", "/hello")),
        ("GET", request_bytes("GET", "/stream?chunks=3&size=5")),
        ("GET", request_bytes("GET", "/environ?n=2")),
    ]
    with gthread.raw_socket() as sock:
        sock.sendall(b"".join(data for _, data in requests))
        responses, _ = read_responses(sock, len(requests), [m for m, _ in requests])
    assert [r.status for r in responses] == [200, 200, 204, 200, 200, 200]
    assert responses[0].json()["environ"]["QUERY_STRING"] == "n=1"
    assert responses[1].body == b"posted body"
    assert responses[2].body == b"" and responses[3].body == b""
    assert len(responses[4].body) == 15
    assert responses[5].json()["environ"]["QUERY_STRING"] == "n=2"


@pytest.mark.parametrize("version, close", [("HTTP/1.1", True), ("HTTP/1.0", False)])
def test_gthread_closes_when_the_client_asks(gthread, version, close):
    """Connection: close on 1.1, or plain 1.0 (no keep-alive): the server closes after answering."""
    resp, _ = gthread.raw_request("GET", "/hello", version=version, close=close)
    assert resp.body == b"hello world"


def test_gthread_closes_idle_keep_alive_connections(start_server):
    srv = start_server("basic", "--threads", "2", "--keep-alive", "1")
    with srv.raw_socket() as sock:
        sock.sendall(request_bytes("GET", "/hello"))
        (resp,), _ = read_responses(sock, 1)
        assert resp.body == b"hello world"
        leftover, closed = recv_until_close(sock, 15)
    assert closed and leftover == b""


def test_slow_request_does_not_block_the_other_thread(gthread):
    with gthread.in_flight("side-by-side", max_ms=15000) as (blocked, pid):
        assert gthread.json("/pid")["pid"] == pid  # served by the other thread meanwhile
        gthread.release("side-by-side")
        assert blocked.result(timeout=30).body == b"released"


@pytest.mark.parametrize("args", [("--workers", "2"), ("-k", "gthread", "--threads", "1", "--workers", "2")],
                         ids=["sync", "gthread-1"])
def test_busy_worker_leaves_new_connections_to_the_idle_one(start_server, args):
    """With its only thread busy, a worker does not take (hoard) connections the idle one can serve."""
    srv = start_server("basic", *args)
    with srv.in_flight("hoard", max_ms=15000) as (blocked, busy):
        pids = [srv.json("/pid")["pid"] for _ in range(6)]
        srv.release("hoard")
        assert blocked.result(timeout=30).body == b"released"
    assert busy not in pids


def _tlocal_counts(server, key, requests):
    counts = {}
    for _ in range(requests):
        out = server.json(f"/tlocal?key={key}")
        counts.setdefault((out["pid"], out["thread"]), []).append(out["count"])
    return counts


@pytest.mark.parametrize("args", [(), ("-k", "gthread", "--threads", "1")], ids=["sync", "gthread-1"])
def test_threading_local_survives_between_requests(start_server, args):
    srv = start_server("basic", *args)
    assert list(_tlocal_counts(srv, "single", 5).values()) == [[1, 2, 3, 4, 5]]


def test_threading_local_survives_per_thread(gthread):
    counts = _tlocal_counts(gthread, "per-thread", 12)
    assert 1 <= len(counts) <= 2
    for seen in counts.values():
        assert seen == list(range(1, len(seen) + 1))
