"""greenweb's gunicorn.conf.py, written as a Django deployment writes one: values from the
environment, the worker count from the CPU count, and the hooks such configs use. gunicorn and
rgunicorn both read it (`-c gunicorn.conf.py`); options given on the command line win."""
import multiprocessing
import os

bind = os.getenv("GREENWEB_BIND", "127.0.0.1:8000")
workers = int(os.getenv("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.getenv("GREENWEB_THREADS", "1"))
timeout = int(os.getenv("GREENWEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = 2000
max_requests_jitter = 200
accesslog = os.getenv("GREENWEB_ACCESS_LOG", "-") or None  # empty: no access log
loglevel = os.getenv("GREENWEB_SERVER_LOG_LEVEL", "info")
forwarded_allow_ips = os.getenv("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server):
    server.log.info("greenweb: starting, master pid %s", server.pid)


def when_ready(server):
    server.log.info("greenweb: ready with %s workers", server.num_workers)


def on_reload(server):
    server.log.info("greenweb: reloading")


def post_fork(server, worker):
    server.log.info("greenweb: worker %s forked", worker.pid)


def worker_abort(worker):
    worker.log.warning("greenweb: worker %s aborted by the timeout", worker.pid)


def child_exit(server, worker):
    server.log.info("greenweb: worker %s exited", worker.pid)


def on_exit(server):
    server.log.info("greenweb: stopped")
