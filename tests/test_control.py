"""The control socket and `rgunicorn ctl`: every command driven through a real server, each doing
what its signal does and answering with what a signal cannot tell."""
import stat
import subprocess

import pytest

from helpers.apps import set_version
from helpers.server import APPS, BIN, ctl, run_to_exit, wait_until


def start(start_server, tmp_path, *args, app="basic", workers=2):
    socket = tmp_path / "rgunicorn.ctl"
    server = start_server(app, "-w", str(workers), "--control-socket", socket, *args)
    return server, socket


def test_show_workers_stats_and_config(start_server, tmp_path):
    server, socket = start(start_server, tmp_path)
    assert stat.S_IMODE(socket.stat().st_mode) == 0o600
    for _ in range(7):
        assert server.get("/hello").status == 200
    rc, answer = ctl(socket, "show", "workers")
    assert rc == 0 and answer["ok"]
    workers = answer["workers"]
    assert sorted(w["pid"] for w in workers) == sorted(server.worker_pids())
    assert sorted(w["id"] for w in workers) == [0, 1]
    assert all(w["generation"] == 0 for w in workers)
    wait_until(lambda: all(w["state"] == "serving" for w in ctl(socket, "show", "workers")[1]["workers"]),
               15, message="both workers serving")

    def requests():
        return ctl(socket, "show", "stats")[1]["stats"]["requests"]
    wait_until(lambda: requests() == 7, 15, message="7 requests counted")
    stats = ctl(socket, "show", "stats")[1]["stats"]
    assert stats["requests_by_status_class"]["2xx"] == 7
    assert stats["workers"]["serving"] == 2
    assert stats["listen_queues"][0]["listener"] == f"http://127.0.0.1:{server.port}"
    rc, answer = ctl(socket, "show", "config")
    assert rc == 0 and answer["config"]["workers"] == 2
    assert answer["config"]["control_socket"] == str(socket)


def test_reload_answers_with_the_import_error_then_with_the_new_generation(start_server, tmp_path, app_dir):
    set_version(app_dir, "v1")
    server, socket = start(start_server, tmp_path, "--chdir", app_dir, app="lifecycle")
    assert server.get("/").body.startswith(b"v1")
    set_version(app_dir, "v2", broken=True)
    rc, answer = ctl(socket, "reload")
    assert rc == 1 and not answer["ok"]
    assert "failed to boot" in answer["error"] and "SyntaxError" in answer["error"], answer
    assert server.get("/").body.startswith(b"v1"), "the old generation keeps serving"
    set_version(app_dir, "v3")
    rc, answer = ctl(socket, "reload")
    assert rc == 0 and answer["ok"], answer
    assert len(answer["workers"]) == 2 and len(answer["retiring"]) == 2
    wait_until(lambda: set(server.worker_pids()) == set(answer["workers"]), 15,
               message="the old workers gone")
    assert server.get("/").body.startswith(b"v3")
    stats = ctl(socket, "show", "stats")[1]["stats"]
    assert stats["reloads"] == {"success": 1, "failed": 1, "superseded": 0}


def test_a_bad_configuration_fails_the_reload_at_once(start_server, tmp_path):
    config = tmp_path / "rgunicorn.toml"
    config.write_text("workers = 2\n")
    server, socket = start(start_server, tmp_path, "-c", config)
    config.write_text('loglevel = "loud"\n')
    rc, answer = ctl(socket, "reload")
    assert rc == 1 and "loglevel" in answer["error"] and "reload failed" in answer["error"], answer
    assert ctl(socket, "show", "stats")[1]["stats"]["reloads"]["failed"] == 1


def test_workers_add_remove_and_kill(start_server, tmp_path):
    server, socket = start(start_server, tmp_path, workers=1)
    rc, answer = ctl(socket, "workers", "add", "2")
    assert rc == 0 and answer == {"ok": True, "target": 3, "serving": 3}
    assert len(server.worker_pids()) == 3
    rc, answer = ctl(socket, "workers", "remove", "2")
    assert rc == 0 and answer == {"ok": True, "target": 1, "serving": 1}
    wait_until(lambda: len(server.worker_pids()) == 1, 15, message="two workers gone")
    [victim] = server.worker_pids()
    rc, answer = ctl(socket, "worker", "kill", str(victim))
    assert rc == 0 and answer == {"ok": True, "pid": victim, "status": "exited with code 0"}
    server.wait_workers(1, gone=[victim], timeout=15, message="a replacement worker")
    restarts = ctl(socket, "show", "stats")[1]["stats"]["worker_restarts"]
    assert restarts["killed"] == 1 and restarts["scale_down"] == 2 and restarts["crash"] == 0
    rc, answer = ctl(socket, "worker", "kill", "1")
    assert rc == 1 and "no worker with pid 1" in answer["error"]
    assert ctl(socket, "workers", "add", "zero")[0] == 1


def test_reopen_and_unknown_commands(start_server, tmp_path):
    errors = tmp_path / "error.log"
    server, socket = start(start_server, tmp_path, "--error-logfile", errors)
    errors.rename(tmp_path / "error.log.1")
    rc, answer = ctl(socket, "reopen")
    assert rc == 0 and answer == {"ok": True, "reopened": True}
    wait_until(errors.exists, 10, message="the master reopening the error log")
    rc, answer = ctl(socket, "make", "coffee")
    assert rc == 1 and "unknown command" in answer["error"] and "worker kill PID" in answer["error"]
    assert ctl(tmp_path / "nobody.ctl", "show", "stats") == (1, None)
    assert subprocess.run([str(BIN), "ctl", "--socket", str(socket)], capture_output=True).returncode == 2


@pytest.mark.parametrize("words", [["shutdown", "--graceful"], ["shutdown"]], ids=["graceful", "fast"])
def test_shutdown_answers_with_the_exit_code(start_server, tmp_path, words):
    server, socket = start(start_server, tmp_path)
    rc, answer = ctl(socket, *words)
    assert rc == 0 and answer == {"ok": True, "exit_code": 0}
    assert server.wait_exit() == 0
    assert not socket.exists(), "the master removes its control socket"


def test_a_second_server_on_the_same_control_socket_does_not_start(start_server, tmp_path):
    server, socket = start(start_server, tmp_path)
    second = run_to_exit(["basic", "--chdir", APPS, "-b", "127.0.0.1:0",
                          "--control-socket", socket])
    assert second.returncode == 1
    assert "another server answers there" in second.stderr_text()
    assert ctl(socket, "show", "workers")[0] == 0, "the first server keeps its socket"
