"""prometheus_client's multiprocess mode as its documentation sets it up for gunicorn
(PROMETHEUS_MULTIPROC_DIR in the environment, mark_process_dead in child_exit)."""
from prometheus_client import multiprocess

workers = 2
max_requests = 3


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
