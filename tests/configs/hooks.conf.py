"""Every server hook, each writing what it saw as one JSON line to $HOOK_LOG."""
import json
import os

workers = 2
timeout = 2
graceful_timeout = 5


def _record(hook, **facts):
    facts.update(hook=hook, pid=os.getpid(), ppid=os.getppid())
    with open(os.environ["HOOK_LOG"], "a") as log:
        log.write(json.dumps(facts) + "\n")


def on_starting(server):
    _record("on_starting", server_pid=server.pid, num_workers=server.num_workers,
            cfg_workers=server.cfg.workers)


def on_reload(server):
    _record("on_reload", server_pid=server.pid)


def when_ready(server):
    server.log.info("when_ready hook ran in %s", os.getpid())
    _record("when_ready", server_pid=server.pid)


def pre_fork(server, worker):
    _record("pre_fork", server_pid=server.pid, worker_age=worker.age)


def post_fork(server, worker):
    _record("post_fork", server_pid=server.pid, worker_pid=worker.pid)


def post_worker_init(worker):
    _record("post_worker_init", worker_pid=worker.pid, worker_ppid=worker.ppid)


def worker_int(worker):
    _record("worker_int", worker_pid=worker.pid)


def worker_abort(worker):
    _record("worker_abort", worker_pid=worker.pid)


def pre_exec(server):
    _record("pre_exec", server_pid=server.pid)


def pre_request(worker, req):
    probe = [list(h) for h in req.headers if h[0] == "X-PROBE"]
    _record("pre_request", worker_pid=worker.pid, method=req.method, path=req.path,
            query=req.query, uri=req.uri, version=list(req.version), probe=probe)


def post_request(worker, req, environ, resp):
    _record("post_request", worker_pid=worker.pid, path=req.path, path_info=environ["PATH_INFO"],
            status=resp.status, status_code=resp.status_code,
            content_type=[v for k, v in resp.headers if k.lower() == "content-type"])


def child_exit(server, worker):
    _record("child_exit", server_pid=server.pid, worker_pid=worker.pid)


def worker_exit(server, worker):
    _record("worker_exit", server_pid=server.pid, worker_pid=worker.pid)


def nworkers_changed(server, new_value, old_value):
    _record("nworkers_changed", new=new_value, old=old_value)


def on_exit(server):
    _record("on_exit", server_pid=server.pid)
