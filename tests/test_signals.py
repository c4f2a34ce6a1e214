"""Process lifecycle under load (issue 3): HUP reloads, TTIN/TTOU, max_requests recycling, timeouts
that name the request, crash-loop back-off, TERM draining the listen queue, USR2 upgrades."""
import os
import re
import signal
import socket
import time

import pytest

from helpers.apps import set_version, version_of
from helpers.http import read_responses, request_bytes
from helpers.load import Load
from helpers.server import proc_start_time, proc_title, wait_until


def assert_clean(result):
    assert result.sent > 0
    assert result.errors == [], f"{len(result.errors)} socket errors, first: {result.errors[:3]}"
    assert result.failed == 0, f"non-2xx answers: {result.statuses}"


def test_hup_under_load_loses_no_request(start_server, app_dir):
    server = start_server("lifecycle", "-w", "2", "--threads", "2", "--chdir", app_dir)
    with Load(server, keepalive_clients=2, close_clients=2) as load:
        load.wait_for_requests(50)
        for i in range(20):
            mark = server.log_mark()
            server.send_signal(signal.SIGHUP)
            server.wait_for(r"reload complete", after=mark)
            load.wait_for_requests(load.result.ok + 10)
        result = load.stop()
    assert_clean(result)
    wait_until(lambda: len(server.worker_pids(alive_only=False)) >= 2 + 2 * 20, 10,
               message="two workers per reload")


def test_hup_loads_new_code_and_survives_broken_code(start_server, app_dir):
    server = start_server("lifecycle", "-w", "2", "--chdir", app_dir)
    assert version_of(server) == "v1"
    set_version(app_dir, "v2")
    mark = server.log_mark()
    server.send_signal(signal.SIGHUP)
    server.wait_for(r"reload complete", after=mark)
    # The old workers stop taking connections as soon as they see the signal, a moment later.
    wait_until(lambda: version_of(server) == "v2", 10, message="the new code serving")
    with Load(server, keepalive_clients=0, close_clients=2) as load:
        set_version(app_dir, "v3", broken=True)
        mark = server.log_mark()
        server.send_signal(signal.SIGHUP)
        server.wait_for(r"failed to boot; the previous workers keep serving", after=mark)
        load.wait_for_requests(load.result.ok + 20)
        result = load.stop()
    assert_clean(result)
    assert "SyntaxError" in server.log_text()[mark:], server.log_text()[mark:]
    assert version_of(server) == "v2"
    set_version(app_dir, "v4")
    mark = server.log_mark()
    server.send_signal(signal.SIGHUP)
    server.wait_for(r"reload complete", after=mark)
    wait_until(lambda: version_of(server) == "v4", 10, message="the fixed code serving")


def test_hup_with_a_bad_config_keeps_serving(start_server, tmp_path):
    config = tmp_path / "rgunicorn.toml"
    config.write_text("workers = 2\n")
    server = start_server("lifecycle", "-c", config, workers=2)
    config.write_text('workers = "many"\n')
    mark = server.log_mark()
    server.send_signal(signal.SIGHUP)
    server.wait_for_log(r"reload failed, the running workers keep serving", after=mark)
    assert 'workers = "many"' in server.log_text()[mark:]
    assert server.get("/").status == 200 and len(server.worker_pids()) == 2
    config.write_text("workers = 3\n")
    mark = server.log_mark()
    server.send_signal(signal.SIGHUP)
    server.wait_for(r"reload complete", after=mark)
    wait_until(lambda: len(server.worker_pids()) == 3, 20, message="3 workers after the fixed reload")


def test_process_titles_name_the_role(start_server):
    server = start_server("lifecycle", "-w", "1", "-n", "greenapp")
    assert proc_title(server.pid) == "rgunicorn: master [greenapp]"
    [worker] = server.worker_pids()
    assert proc_title(worker) == "rgunicorn: worker [greenapp]"


def test_ttin_burst_adds_every_worker_and_ttou_removes(start_server):
    server = start_server("lifecycle", "-w", "1")
    # The kernel merges a standard signal sent while the same one is still pending (undelivered),
    # for any process; the burst is paced so each is delivered even while workers boot on both
    # cores. Once delivered, none may be lost (gunicorn keeps at most 5 queued).
    for _ in range(10):
        server.send_signal(signal.SIGTTIN)
        time.sleep(0.05)
    wait_until(lambda: len(server.worker_pids()) == 11, 20, message="11 workers")
    for _ in range(3):
        server.send_signal(signal.SIGTTOU)
        time.sleep(0.05)
    wait_until(lambda: len(server.worker_pids()) == 8, 20, message="8 workers")
    for _ in range(20):
        server.send_signal(signal.SIGTTOU)
        time.sleep(0.05)
    wait_until(lambda: len(server.worker_pids()) == 1, 20, message="never below one worker")
    assert server.get("/").status == 200


@pytest.mark.parametrize("mode", [["-w", "2"], ["-w", "2", "--threads", "2"]], ids=["sync", "gthread"])
def test_max_requests_recycles_without_failures(start_server, mode):
    server = start_server("lifecycle", *mode, "--max-requests", "25", "--max-requests-jitter", "5")
    with Load(server, keepalive_clients=2, close_clients=2, max_requests=400) as load:
        wait_until(lambda: load.result.sent >= 400, 60, message="400 requests")
        result = load.stop()
    assert_clean(result)
    # Each worker answers at most 30 requests, plus one last one per keep-alive connection it holds;
    # the boot lines come through a pipe, so the last ones may still be on their way.
    wait_until(lambda: len(server.worker_pids(alive_only=False)) >= 400 // (30 + 4), 10,
               message="a worker booted per 34 requests")
    assert "Autorestarting worker" in server.log_text()


@pytest.mark.parametrize("mode", [[], ["--threads", "2"]], ids=["sync", "gthread"])
def test_timeout_names_the_request_and_replaces_the_worker(start_server, mode):
    server = start_server("lifecycle", "-w", "1", "-t", "2", *mode)
    [worker] = server.worker_pids()
    sock = socket.create_connection((server.host, server.port), timeout=20)
    sock.sendall(request_bytes("GET", "/spin?x=1"))
    line = server.wait_for_log(r"WORKER TIMEOUT \(pid:(\d+)\): .*", timeout=20)
    assert int(line.group(1)) == worker
    assert '"GET /spin?x=1"' in line.group(0)
    assert sock.recv(65536) in (b"",) or sock.recv(65536) == b""
    sock.close()
    server.wait_for_log(r'File ".*lifecycle\.py", line \d+ in application')
    server.wait_workers(1, gone=[worker], message="a replacement worker")
    assert server.get("/").status == 200


def test_slow_client_never_trips_the_timeout(start_server):
    server = start_server("lifecycle", "-w", "1", "-t", "2")
    sock = socket.create_connection((server.host, server.port), timeout=20)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
    for byte in b"abcde":
        sock.sendall(bytes([byte]))
        time.sleep(1.0)  # the client is slow on purpose: 5 s in all, over the 2 s timeout
    [resp], _closed = read_responses(sock, 1, ("POST",), timeout=20)
    sock.close()
    assert resp.status == 200 and resp.body == b"5\n"
    assert "WORKER TIMEOUT" not in server.log_text()


def test_crash_loop_backs_off_then_recovers(start_server, app_dir):
    flag = app_dir / "broken.flag"
    server = start_server("lifecycle", "-w", "1", "--chdir", app_dir,
                          env={"RGT_CRASH_FLAG": str(flag)})
    [worker] = server.worker_pids()
    assert server.get("/").status == 200
    flag.touch()
    os.kill(worker, signal.SIGKILL)
    server.wait_for(r"next attempt in \d+ ms", count=4, timeout=30)
    delays = [int(d) for d in re.findall(r"next attempt in (\d+) ms", server.log_text())]
    assert delays[:4] == sorted(delays[:4]) and delays[3] > delays[0], delays
    assert server.popen.poll() is None, "the master must stay up through a crash loop"
    flag.unlink()
    wait_until(lambda: server.get("/", timeout=5).status == 200, 30, message="recovery")


def test_term_serves_connections_already_queued(start_server):
    server = start_server("lifecycle", "-w", "1", "--backlog", "64")
    busy = socket.create_connection((server.host, server.port), timeout=20)
    busy.sendall(request_bytes("GET", "/sleep?ms=1500"))
    server.wait_for_log(r"Booting worker")
    queued = [socket.create_connection((server.host, server.port), timeout=20) for _ in range(5)]
    for sock in queued:
        sock.sendall(request_bytes("GET", "/"))
    server.send_signal(signal.SIGTERM)
    for sock in [busy] + queued:
        [resp], _closed = read_responses(sock, 1, timeout=20)
        assert resp.status == 200
        sock.close()
    assert server.wait_exit() == 0


def test_usr2_upgrade_then_winch_and_term_without_failures(start_server):
    server = start_server("lifecycle", "-w", "2", "--threads", "2")
    new_master = None
    try:
        with Load(server, keepalive_clients=2, close_clients=2) as load:
            load.wait_for_requests(50)
            mark = server.log_mark()
            server.send_signal(signal.SIGUSR2)
            found = server.wait_for(r"\[(\d+)\] \[INFO\] Booting worker", after=mark, count=2)
            new_master = int(server.wait_for_log(r"\[(\d+)\] \[INFO\] Starting rgunicorn", after=mark).group(1))
            assert new_master != server.pid and len(found) == 2
            old_workers = [p for p in server.worker_pids() if os.getppid() and p not in
                           [int(m.group(1)) for m in found]]
            server.send_signal(signal.SIGWINCH)
            wait_until(lambda: all(proc_start_time(p) is None for p in old_workers), 20,
                       message="old workers to stop")
            load.wait_for_requests(load.result.ok + 50)
            server.send_signal(signal.SIGTERM)
            assert server.wait_exit() == 0
            load.wait_for_requests(load.result.ok + 50)
            result = load.stop()
        assert_clean(result)
    finally:
        if new_master and proc_start_time(new_master) is not None:
            os.kill(new_master, signal.SIGTERM)
            wait_until(lambda: proc_start_time(new_master) is None, 20, message="new master to exit")
