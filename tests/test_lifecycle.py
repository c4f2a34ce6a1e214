"""Process lifecycle: app loading (factories, load errors), respawn, signals, timeouts, max-requests."""
import http.client
import os
import signal

import pytest

from helpers.server import APPS, BOOT_RE, run_to_exit, wait_until

CUT_OFF = (ConnectionError, http.client.HTTPException, OSError)


def run_app(app, *args):
    """Run an app that should not come up; returns the finished process."""
    return run_to_exit([app, "--bind", "127.0.0.1:0", "--chdir", APPS, *args])


def outcome(future):
    """The body of a finished request, or the name of the exception that cut it short.

    A /block request nobody releases ends with b"timeout" only if the server let it run.
    """
    try:
        return future.result(timeout=40).body
    except CUT_OFF as exc:
        return type(exc).__name__


def assert_no_workers_left(server):
    wait_until(lambda: not server.worker_pids(), 10, message="the workers to exit with the master")


@pytest.mark.parametrize("spec, body", [
    ('factory:create_app("x")', b"factory x"),
    ("factory:create_app()", b"factory default"),
])
def test_app_factory(start_server, spec, body):
    assert start_server(spec).get("/").body == body


def test_explicit_callable_name(start_server):
    assert start_server("basic:application").get("/hello").body == b"hello world"


@pytest.mark.parametrize("app, args, needle", [
    ("broken_import", (), "broken-import-marker"),
    ("broken_import", ("--preload",), "broken-import-marker"),
    ("no_such_module_xyz", (), "ModuleNotFoundError"),
    ("basic:no_such_callable", (), "no_such_callable"),
    ("basic:NOT_CALLABLE", (), "callable"),
])
def test_app_load_error_exits_4(app, args, needle):
    proc = run_app(app, *args)
    assert proc.returncode == 4, proc.stderr_text()
    assert needle in proc.stderr_text()


def test_a_zygote_hanging_in_the_import_is_killed_at_the_timeout(start_server, tmp_path):
    flag = tmp_path / "hang"
    flag.touch()
    server = start_server("hanging_import", "-t", "2", env={"RGT_HANG_FLAG": str(flag)},
                          workers=0)
    server.wait_for_log(r"the zygote of generation 0 did not get ready within timeout")
    flag.unlink()
    server.wait_for(BOOT_RE.pattern, timeout=15)
    assert server.get("/").body == b"imported"


def test_import_error_shows_python_traceback():
    stderr = run_app("broken_import").stderr_text()
    assert "Traceback (most recent call last)" in stderr
    assert "RuntimeError: broken-import-marker" in stderr


def test_killed_worker_is_replaced(start_server):
    srv = start_server("basic", "--workers", "2")
    old = srv.worker_pids()
    os.kill(old[0], signal.SIGKILL)
    live = srv.wait_workers(2, gone=[old[0]], timeout=10, message="two live workers again")
    assert old[1] in live and len(set(live) - set(old)) == 1, (old, live)
    assert srv.get("/hello").status == 200


def test_term_lets_the_in_flight_request_finish(start_server):
    srv = start_server("basic")
    with srv.in_flight("drain", "/sleep?ms=1500&token=drain") as (slow, _):
        assert srv.stop(signal.SIGTERM) == 0
        assert outcome(slow) == b"slept 1500"
    srv.wait_for_log(r"\[INFO\] Shutting down: Master")
    assert_no_workers_left(srv)
    with pytest.raises(ConnectionRefusedError):
        srv.get("/hello")


def test_term_stops_waiting_after_graceful_timeout(start_server):
    srv = start_server("basic", "--graceful-timeout", "1")
    with srv.in_flight("overdue", max_ms=20000) as (stuck, _):
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(12) == 0, "TERM must not wait past graceful_timeout"
        assert outcome(stuck) != b"timeout", "the request must be cut short"
    assert_no_workers_left(srv)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["INT", "QUIT"])
def test_fast_stop_does_not_wait_for_requests(start_server, sig):
    srv = start_server("basic")
    with srv.in_flight("fast", max_ms=20000) as (stuck, _):
        srv.send_signal(sig)
        assert srv.wait_exit(12) == 0
        assert outcome(stuck) != b"timeout", "the request must be cut short"
    assert_no_workers_left(srv)


def test_worker_past_timeout_is_replaced(start_server):
    srv = start_server("basic", "--timeout", "2")
    with srv.in_flight("stuck") as (stuck, old):
        mark = srv.log_mark()
        srv.wait_for_log(BOOT_RE.pattern, after=mark)
        wait_until(lambda: old not in srv.worker_pids(), 10, message="the stuck worker to be killed")
        assert outcome(stuck) != b"timeout", "the request must be cut short"
    assert srv.get("/hello").status == 200


def test_max_requests_recycles_the_worker(start_server):
    srv = start_server("basic", "--max-requests", "2")
    pids = [srv.json("/pid")["pid"] for _ in range(5)]
    assert len(set(pids)) >= 2
    wait_until(lambda: len(srv.worker_pids(alive_only=False)) >= 2, 10, message="two boot lines")


def test_a_worker_past_max_requests_takes_no_new_connection(start_server):
    """Its last request stops the worker's accepting before the next client, already queued, can
    be taken (the accept loop's select! once took it half of the time: a flaky test above)."""
    srv = start_server("basic", "--max-requests", "1")
    pids = [srv.json("/pid")["pid"] for _ in range(8)]
    assert len(set(pids)) == 8, pids


def test_preload_serves(start_server):
    srv = start_server("basic", "--preload", "--workers", "2")
    assert srv.get("/hello").body == b"hello world"
    assert srv.json("/pid")["pid"] in srv.worker_pids()


def test_hup_replaces_all_workers(start_server):
    srv = start_server("basic", "--workers", "2")
    old = set(srv.worker_pids())
    mark = srv.log_mark()
    srv.send_signal(signal.SIGHUP)
    srv.wait_for(BOOT_RE.pattern, after=mark, count=2)
    srv.wait_workers(2, gone=old, timeout=15, message="two new workers and no old one")
    assert srv.get("/hello").status == 200


def test_ttin_ttou_change_the_worker_count(start_server):
    srv = start_server("basic")
    srv.send_signal(signal.SIGTTIN)
    wait_until(lambda: len(srv.worker_pids()) == 2, 10, message="a second worker after TTIN")
    srv.send_signal(signal.SIGTTOU)
    wait_until(lambda: len(srv.worker_pids()) == 1, 10, message="one worker after TTOU")
    assert srv.get("/hello").status == 200
