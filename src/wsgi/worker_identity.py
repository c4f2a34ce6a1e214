"""rgunicorn's worker identity for prometheus_client's multiprocess mode.

Installed before the app is imported when PROMETHEUS_MULTIPROC_DIR is set: each worker writes its
files under its RGUNICORN_WORKER_ID (reused by its replacement), so the directory does not grow as
workers come and go; any other process (the zygote, a process the app forks) under its own pid.
"""
import os

from prometheus_client import values

_worker = [None, None]  # (pid, id) of the worker this process is


def set_worker(worker_id):
    _worker[0], _worker[1] = os.getpid(), str(worker_id)


def identity():
    pid = os.getpid()
    return _worker[1] if _worker[0] == pid else "pid%d" % pid


values.ValueClass = values.MultiProcessValue(identity)
