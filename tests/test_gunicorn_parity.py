"""The gunicorn.conf.py files in tests/configs, each run through rgunicorn and through real gunicorn
(from the test venv) with the same app and the same steps: both must give the same observable
results. Deliberate differences are listed in the README ("Moving from gunicorn") and marked here.
"""
import json
import os
import re
import signal
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

import helpers.server as server_module
from helpers.server import BOOT_RE, REPO, VENV, wait_until

CONFIGS = REPO / "tests" / "configs"
GUNICORN = VENV / "bin" / "gunicorn"
SERVERS = ("rgunicorn", "gunicorn")


@contextmanager
def running_as(name):
    """Starts servers through the fixtures as rgunicorn, or as gunicorn (same flags)."""
    if name == "rgunicorn":
        yield []
        return
    if not os.access(GUNICORN, os.X_OK):
        pytest.fail(f"gunicorn is not installed in {VENV} (tests/requirements.txt)")
    with mock.patch.object(server_module, "BIN", GUNICORN):
        # gunicorn 27 opens a control socket under ~/.gunicorn by default; the tests need none.
        yield ["--no-control-socket"]


def start(start_server, name, app, config, *args, **kw):
    with running_as(name) as extra:
        return start_server(app, "-c", CONFIGS / config, *extra, *args, **kw)


def both(observe):
    """observe(name) for each server; asserts they agree and returns the common observation."""
    seen = {name: observe(name) for name in SERVERS}
    assert seen["rgunicorn"] == seen["gunicorn"], seen
    return seen["rgunicorn"]


def test_settings_only(start_server):
    def observe(name):
        srv = start(start_server, name, "basic", "settings.conf.py", workers=2)
        environ = srv.json("/environ")["environ"]
        return (len(srv.worker_pids()), environ["wsgi.multithread"],
                srv.json("/osenv?name=FROM_CONFIG")["value"], srv.stop())
    assert both(observe) == (2, True, "settings", 0)


def test_values_from_the_environment(start_server):
    env = {"CFG_WORKERS": "3", "CFG_TIMEOUT": "15", "CFG_VALUE": "env42", "CFG_LOG_LEVEL": "debug"}

    def observe(name):
        srv = start(start_server, name, "basic", "environment.conf.py", env=env, workers=3)
        debug = re.search(r"\[DEBUG\]", srv.log_text()) is not None
        return len(srv.worker_pids()), srv.json("/osenv?name=FROM_CONFIG")["value"], debug
    assert both(observe) == (3, "env42", True)


def test_workers_from_cpu_count(start_server):
    expected = os.cpu_count() * 2 + 1

    def observe(name):
        srv = start(start_server, name, "basic", "cpu.conf.py", workers=expected)
        return len(srv.worker_pids())
    assert both(observe) == expected


def test_unknown_names_and_ignored_knobs(start_server):
    def observe(name):
        srv = start(start_server, name, "basic", "unknown.conf.py", workers=2)
        return len(srv.worker_pids()), srv.json("/osenv?name=FROM_CONFIG")["value"]
    assert both(observe) == (2, "a/b")
    # Deliberate difference: gunicorn drops names that are not settings silently; rgunicorn warns.
    log = start(start_server, "rgunicorn", "basic", "unknown.conf.py", workers=2).log_text()
    for name in ("wrokers", "BASE_DIR"):
        assert f"{name} is not a gunicorn setting; ignored" in log, log
    assert "worker_tmp_dir = '/dev/shm' is ignored" in log and "sendfile = False is ignored" in log
    assert "join is not" not in log and "os is not" not in log, "imports are not warned about"


def test_a_hook_that_raises_is_logged_and_the_server_lives_on(start_server):
    def observe(name):
        srv = start(start_server, name, "basic", "raising.conf.py")
        refused = srv.get("/raise-pre").status
        served = srv.get("/hello").status
        wait_until(lambda: "post_request fails after /hello" in srv.log_text(), 10,
                   message="the post_request traceback in the log")
        traceback = "Traceback (most recent call last)" in srv.log_text()
        return refused, served, traceback, srv.stop()
    assert both(observe) == (500, 200, True, 0)


def test_post_fork_that_raises_is_a_boot_error(start_server):
    def observe(name):
        srv = start(start_server, name, "basic", "boot_error.conf.py", ready=False)
        code = srv.wait_exit()
        return code, "post_fork cannot set up" in srv.log_text()
    assert both(observe) == (3, True)


def test_prometheus_multiprocess_with_child_exit(start_server, tmp_path):
    requests = 10

    def observe(name):
        metrics_dir = tmp_path / name
        metrics_dir.mkdir()
        env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        srv = start(start_server, name, "metrics", "prometheus.conf.py", env=env, workers=2)
        pids = {int(srv.get("/").body) for _ in range(requests)}
        # Workers retire after 3 requests each; child_exit marks every exited one dead.
        exited = lambda: set(srv.worker_pids(alive_only=False)) - set(srv.worker_pids())  # noqa: E731
        wait_until(lambda: len(exited()) >= 2 and not live_gauge_pids(metrics_dir) & exited(), 15,
                   message="the live gauges of exited workers to be removed")
        text = srv.get("/metrics").body.decode()
        total = float(re.search(r"^app_requests_total (\S+)$", text, re.M).group(1))
        return total, len(pids) > 2
    assert both(observe) == (requests, True)


def live_gauge_pids(directory):
    return {int(m.group(1)) for p in Path(directory).iterdir()
            if (m := re.match(r"gauge_livesum_(\d+)\.db$", p.name))}


# -- every hook -------------------------------------------------------------------------------

def test_every_hook_runs_in_the_right_process_with_the_right_arguments(start_server, tmp_path):
    def observe(name):
        log = tmp_path / f"{name}.jsonl"
        srv = start(start_server, name, "basic", "hooks.conf.py", env={"HOOK_LOG": str(log)},
                    workers=2)
        hook_scenario(srv, log)
        return normalized(log, srv.pid)
    seen = {name: observe(name) for name in SERVERS}
    rg, gu = (Counter(seen[n]) for n in SERVERS)
    # Deliberate difference: gunicorn runs when_ready before it forks the first workers;
    # rgunicorn once they serve (READY=1). The records are the same, only their order differs.
    assert rg == gu, f"only rgunicorn: {rg - gu}\nonly gunicorn: {gu - rg}"
    hooks = {record[0] for record in seen["rgunicorn"]}
    assert hooks == {"on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
                     "post_worker_init", "worker_int", "worker_abort", "pre_request",
                     "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit"}


def records(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def count(log, hook):
    return sum(1 for r in records(log) if r["hook"] == hook)


def hook_scenario(srv, log):
    """Requests, TTIN, TTOU, HUP, a QUIT to a worker, a timeout, then TERM."""
    booted = lambda n: lambda: len(BOOT_RE.findall(srv.log_text())) >= n  # noqa: E731
    resp = srv.get("/hello?x=1", headers={"X-Probe": "yes"})
    assert resp.status == 200
    wait_until(lambda: count(log, "post_request") == 1, 10, message="post_request")
    srv.send_signal(signal.SIGTTIN)
    wait_until(booted(3), 15, message="a third worker")
    wait_until(lambda: count(log, "post_worker_init") == 3, 10, message="its post_worker_init")
    srv.send_signal(signal.SIGTTOU)
    wait_until(lambda: count(log, "child_exit") == 1, 15, message="one worker less")
    srv.send_signal(signal.SIGHUP)
    wait_until(booted(5), 15, message="two workers of the new configuration")
    wait_until(lambda: count(log, "child_exit") == 3, 15, message="the old workers gone")
    worker = srv.worker_pids()[-1]
    os.kill(worker, signal.SIGQUIT)
    wait_until(lambda: count(log, "worker_int") == 1, 10, message="worker_int")
    wait_until(booted(6), 15, message="the worker that quit replaced")
    try:
        srv.get("/sleep?ms=8000", timeout=20)
    except OSError:
        pass  # the worker is killed mid-request: the connection drops
    wait_until(lambda: count(log, "worker_abort") == 1, 15, message="worker_abort")
    wait_until(booted(7), 15, message="the aborted worker replaced")
    wait_until(lambda: count(log, "post_worker_init") == 7, 10, message="the replacement ready")
    assert srv.stop() == 0


def normalized(log, master):
    """Each record as (hook, role, facts) with pids named by their role."""
    out = []
    workers = {r["pid"] for r in records(log) if r["ppid"] == master}
    for record in records(log):
        pid, ppid = record.pop("pid"), record.pop("ppid")
        role = "master" if pid == master else "worker" if ppid == master else f"other({ppid})"

        def name(value, pid=pid):
            if not isinstance(value, int) or isinstance(value, bool):
                return value
            if value in workers and value != pid:
                return "a worker"
            return {master: "master", pid: "self"}.get(value, value)
        facts = tuple(sorted((k, json.dumps(name(v))) for k, v in record.items()
                             if k not in ("hook", "worker_age")))
        out.append((record["hook"], role, facts))
    return out
