"""Python config files (gunicorn.conf.py) and server hooks, rgunicorn's side: the forms of -c,
errors, --print-config / --check-config, GUNICORN_CMD_ARGS, HUP and USR2 with hooks, and the
master-side hooks whose failures gunicorn makes fatal and rgunicorn only logs."""
import json
import os
import signal
import tomllib

import pytest

from helpers.server import APPS, BOOT_RE, proc_start_time, run_to_exit, wait_until

HOOK_RECORDER = '''
import json, os

def _record(hook, **facts):
    facts.update(hook=hook, pid=os.getpid())
    with open(os.environ["HOOK_LOG"], "a") as log:
        log.write(json.dumps(facts) + "\\n")
'''


@pytest.fixture
def py_config(write_config):
    """write(text, name) -> path of a Python config file with that (dedented) content."""
    return lambda text, name="gunicorn.conf.py": write_config(text, name)


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_config(*args, env=None, cwd=None):
    return run_to_exit(["basic", "--chdir", APPS, "--bind", "127.0.0.1:0", *args], env=env,
                       cwd=cwd, timeout=15)


def test_default_gunicorn_conf_py_in_the_working_directory(start_server, py_config, tmp_path):
    py_config("workers = 2\nraw_env = ['FROM_DEFAULT=yes']\n")
    srv = start_server("basic", cwd=tmp_path, workers=2)
    assert len(srv.worker_pids()) == 2
    assert srv.json("/osenv?name=FROM_DEFAULT")["value"] == "yes"


def test_python_module_config(start_server, py_config, tmp_path):
    py_config("workers = 2\n", name="site_gunicorn.py")
    srv = start_server("basic", "-c", "python:site_gunicorn", cwd=tmp_path, workers=2)
    assert len(srv.worker_pids()) == 2


def test_gunicorn_cmd_args_are_read_below_ours(start_server):
    env = {"GUNICORN_CMD_ARGS": "--workers 3 --env FROM_GUNICORN_ARGS=1",
           "RGUNICORN_CMD_ARGS": "--workers 2"}
    srv = start_server("basic", env=env, workers=2)
    assert len(srv.worker_pids()) == 2
    assert srv.json("/osenv?name=FROM_GUNICORN_ARGS")["value"] == "1"


@pytest.mark.parametrize("text, needles", [
    ("workers = 'four'\n", ("workers", "'four'")),
    ("timeout = [1]\n", ("timeout", "[1]")),
    ("bind = object()\n", ("bind", "object")),
    ("def post_fork(server):\n    pass\n", ("post_fork", "(server, worker)")),
    ("certfile = '/etc/ssl/cert.pem'\n", ("certfile", "TLS is not supported", "Caddy")),
    ("worker_class = 'gevent'\n", ("worker_class", "gevent", "sync, gthread")),
    ("raise RuntimeError('config is broken')\n", ("config is broken", "Traceback")),
])
def test_bad_python_config_exits_2_naming_key_value_and_what_is_allowed(py_config, text, needles):
    proc = run_config("-c", py_config(text))
    assert proc.returncode == 2, proc.stderr_text()
    for needle in needles:
        assert needle in proc.stderr_text(), (needle, proc.stderr_text())


def test_print_config_shows_the_values_python_computed(py_config):
    path = py_config("""
        import multiprocessing, os
        workers = multiprocessing.cpu_count() * 2 + 1
        timeout = os.environ.get("CFG_TIMEOUT", "30")
        def post_fork(server, worker):
            pass
    """)
    proc = run_config("-c", path, "--print-config", env={"CFG_TIMEOUT": "12"})
    assert proc.returncode == 0, proc.stderr_text()
    printed = tomllib.loads(proc.stdout_text())
    assert (printed["workers"], printed["timeout"]) == (os.cpu_count() * 2 + 1, 12)
    assert "# server hooks: post_fork" in proc.stdout_text()


def test_check_config_imports_the_app(py_config):
    path = py_config("workers = 2\n")
    assert run_config("-c", path, "--check-config").returncode == 0
    proc = run_to_exit(["broken_import", "--chdir", APPS, "-c", path, "--check-config"],
                       timeout=15)
    assert proc.returncode == 4, proc.stderr_text()
    assert "Traceback" in proc.stderr_text()


def test_hup_runs_the_config_again_and_takes_its_hooks(start_server, py_config, tmp_path):
    log = tmp_path / "hooks.jsonl"
    path = py_config(HOOK_RECORDER + "workers = 1\n"
                     "def post_fork(server, worker):\n    _record('post_fork', version=1)\n")
    srv = start_server("basic", "-c", path, env={"HOOK_LOG": str(log)})
    path.write_text(HOOK_RECORDER + "workers = 2\n"
                    "def post_fork(server, worker):\n    _record('post_fork', version=2)\n")
    mark = srv.log_mark()
    srv.send_signal(signal.SIGHUP)
    srv.wait_for(BOOT_RE.pattern, after=mark, count=2)
    wait_until(lambda: [r["version"] for r in records(log)] == [1, 2, 2], 10,
               message=f"the new hook in both new workers (have {records(log)})")


def test_pre_exec_runs_in_the_new_master_before_exec(start_server, py_config, tmp_path):
    log, pidfile = tmp_path / "hooks.jsonl", tmp_path / "rg.pid"
    path = py_config(HOOK_RECORDER + "def pre_exec(server):\n    _record('pre_exec', server=server.pid)\n")
    srv = start_server("basic", "-c", path, "--pid", pidfile, env={"HOOK_LOG": str(log)})
    srv.send_signal(signal.SIGUSR2)
    new_master = wait_until(lambda: pidfile.exists() and int(pidfile.read_text()) != srv.pid
                            and int(pidfile.read_text()), 15, message="the new master's pid file")
    try:
        (record,) = records(log)
        assert (record["hook"], record["pid"], record["server"]) == ("pre_exec", new_master, srv.pid)
    finally:
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: proc_start_time(new_master) is None, 15,
                   message="the new master to stop")


def test_master_hooks_that_raise_are_logged_and_the_master_lives_on(start_server, py_config):
    path = py_config("""
        def on_starting(server):
            raise RuntimeError("on_starting broke")
        def when_ready(server):
            raise RuntimeError("when_ready broke")
        def nworkers_changed(server, new_value, old_value):
            raise RuntimeError("nworkers_changed broke")
        def child_exit(server, worker):
            raise RuntimeError("child_exit broke")
    """)
    srv = start_server("basic", "-c", path)
    srv.wait_for_log("when_ready broke")
    srv.send_signal(signal.SIGTTIN)
    srv.wait_for(BOOT_RE.pattern, count=2)
    os.kill(srv.worker_pids()[0], signal.SIGKILL)
    srv.wait_for_log("child_exit broke")
    assert srv.get("/hello").status == 200
    log = srv.log_text()
    for hook in ("on_starting", "when_ready", "nworkers_changed", "child_exit"):
        assert f"Exception in {hook} hook:\nTraceback" in log, hook
    assert srv.stop() == 0


def test_hook_objects_name_what_they_have(start_server, py_config, tmp_path):
    log = tmp_path / "hooks.jsonl"
    path = py_config(HOOK_RECORDER + """
def post_worker_init(worker):
    try:
        worker.no_such_thing
    except AttributeError as error:
        _record("error", text=str(error))
    worker.stash = "kept"
    _record("stash", value=worker.stash, cfg_workers=worker.cfg.workers, age=worker.age,
            ppid=worker.ppid, alive=worker.alive)
    worker.log.info("post_worker_init says %s", "hi")
""")
    srv = start_server("basic", "-c", path, env={"HOOK_LOG": str(log)})
    srv.wait_for_log(r"\[INFO\] post_worker_init says hi")
    error, stash = records(log)
    assert "no attribute 'no_such_thing'" in error["text"]
    assert "it has: age, alive, cfg, log, pid, ppid" in error["text"]
    assert (stash["value"], stash["cfg_workers"], stash["ppid"], stash["alive"]) == \
        ("kept", 1, srv.pid, True)


def test_request_hooks_cost_nothing_when_absent_and_see_the_request(start_server, py_config,
                                                                    tmp_path):
    log = tmp_path / "hooks.jsonl"
    path = py_config(HOOK_RECORDER + """
threads = 2
def post_request(worker, req, environ, resp):
    _record("post", uri=req.uri, status=resp.status, code=resp.status_code,
            query=environ["QUERY_STRING"], headers=dict(resp.headers))
""")
    srv = start_server("basic", "-c", path, env={"HOOK_LOG": str(log)})
    assert srv.get("/status?code=204").status == 204
    wait_until(lambda: records(log), 10, message="post_request")
    (record,) = records(log)
    assert (record["uri"], record["status"], record["code"], record["query"]) == \
        ("/status?code=204", "204 No Content", 204, "code=204")


def test_request_hooks_share_one_req_and_see_headers_as_sent(start_server, py_config, tmp_path):
    """As in gunicorn, pre_request and post_request get the same req (what one sets, the other
    reads), resp.headers holds the app's latin-1 values as it gave them, and a hook's
    log.critical is logged as CRITICAL."""
    log = tmp_path / "hooks.jsonl"
    path = py_config(HOOK_RECORDER + """
def pre_request(worker, req):
    req.seen_by_pre = req.path
def post_request(worker, req, environ, resp):
    _record("post", seen=getattr(req, "seen_by_pre", None), headers=dict(resp.headers))
    worker.log.critical("post_request saw %s", req.path)
""")
    srv = start_server("basic", "-c", path, env={"HOOK_LOG": str(log)})
    assert srv.get("/latin1").status == 200
    wait_until(lambda: records(log), 10, message="post_request")
    (record,) = records(log)
    assert record["seen"] == "/latin1"
    assert record["headers"]["X-Latin"] == "caf\xe9"
    srv.wait_for_log(r"\[CRITICAL\] post_request saw /latin1")


def test_a_master_with_python_never_imports_the_app(start_server, py_config, tmp_path):
    """With a Python config (and from the wheel) the master has an interpreter; the app is still
    imported only by the zygote of each generation, so a HUP loads it afresh."""
    srv = start_server("imports", "-c", py_config("workers = 2\n"), workers=2)
    first = srv.records("imports")
    mark = srv.log_mark()
    srv.send_signal(signal.SIGHUP)
    srv.wait_for(BOOT_RE.pattern, after=mark, count=2)
    wait_until(lambda: len(srv.records("imports")) == 2, 10, message="a second import")
    imports = srv.records("imports")
    assert str(srv.pid) not in imports, imports
    assert len(first) == 1 and imports[1] != imports[0], "one import per generation, elsewhere"


def test_gunicorn_flags_of_knobs_we_lack_are_accepted_with_a_warning(start_server):
    srv = start_server("basic", "--worker-tmp-dir", "/dev/shm", "--no-sendfile")
    assert srv.get("/hello").status == 200
    log = srv.log_text()
    assert 'worker_tmp_dir = "/dev/shm" is ignored' in log and "--no-sendfile is ignored" in log
    proc = run_config("--certfile", "/etc/ssl/cert.pem")
    assert proc.returncode == 2 and "TLS is not supported" in proc.stderr_text()
