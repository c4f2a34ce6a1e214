"""Chaos through the real binary (issue 12): a minute of load on loopback while a driver sends
random HUPs (to new code and to broken code), TTIN and TTOU, and kills workers and the zygote with
-9, under max_requests 50. Afterwards: every failed request was in flight when a worker was killed
with -9, no response came from code older than the newest good reload once it settled, and the
master stops on TERM within graceful_timeout + 2 s leaving no child."""
import contextlib
import http.client
import os
import random
import signal
import threading
import time
from dataclasses import dataclass

import pytest

from helpers.apps import copy_lifecycle, set_version
from helpers.server import wait_until

SECONDS = float(os.environ.get("RGT_CHAOS_SECONDS", "60"))
GRACEFUL = 5
CLIENTS = 4
MAX_WORKERS = 4


@dataclass
class Exchange:
    start: float
    end: float
    version: str | None  # None: the request failed
    detail: str = ""  # the worker's pid, or why the request failed


class Clients:
    """Connection: close clients on loopback, recording every request's interval and outcome."""

    def __init__(self, server, deadline):
        self.server = server
        self.deadline = deadline
        self.exchanges = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            start = time.monotonic()
            conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=20)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read().decode()
                version = body.split()[0] if resp.status == 200 else None
                detail = body.split()[-1] if version else f"status {resp.status}: {body[:100]!r}"
            except (OSError, http.client.HTTPException) as exc:
                version, detail = None, repr(exc)
            finally:
                conn.close()
            with self._lock:
                self.exchanges.append(Exchange(start, time.monotonic(), version, detail))


def code_of_children(server):
    """{pid: version} of the master's live children; None for a child that has not recorded
    the code it runs yet (the app notes it at import in a zygote and after fork in a worker)."""
    versions = {}
    for fields in map(str.split, server.records("processes")):
        if len(fields) == 3:  # a line being written is read whole next time
            versions[int(fields[2])] = fields[1]
    return {pid: versions.get(pid) for pid in server.children()}


class Driver:
    """Random operator actions, one at a time, each waited for where the outcome is defined."""

    def __init__(self, server, app_dir, rng):
        self.server, self.app_dir, self.rng = server, app_dir, rng
        self.good = 1
        self.target = 2
        self.kills = []  # when a worker was killed with -9
        self.settled = []  # (when, version): from then on only this version (or newer) answers
        self.actions = []

    def act(self):
        name, action = self.rng.choice([
            ("good_hup", self.good_hup), ("broken_hup", self.broken_hup),
            ("ttin", self.ttin), ("ttou", self.ttou),
            ("kill_worker", self.kill_worker), ("kill_worker", self.kill_worker),
            ("kill_zygote", self.kill_zygote),
        ])
        self.actions.append((round(time.monotonic(), 3), name))
        action()

    def good_hup(self):
        self.good += 1
        version = f"v{self.good}"
        set_version(self.app_dir, version)
        mark = self.server.log_mark()
        self.server.send_signal(signal.SIGHUP)
        self.server.wait_for(r"reload complete", after=mark, timeout=20)
        self.target = 2
        wait_until(lambda: set(code_of_children(self.server).values()) == {version}, 20,
                   message=f"only processes of {version} left")
        self.settled.append((time.monotonic(), version))

    def broken_hup(self):
        set_version(self.app_dir, f"v{self.good + 1}", broken=True)
        mark = self.server.log_mark()
        self.server.send_signal(signal.SIGHUP)
        self.server.wait_for(r"failed to boot; the previous workers keep serving", after=mark,
                             timeout=20)
        # A deploy that broke is fixed by the next one; a zygote started meanwhile would import
        # the broken file.
        set_version(self.app_dir, f"v{self.good}")

    def ttin(self):
        if self.target < MAX_WORKERS:
            self.target += 1
            self.server.send_signal(signal.SIGTTIN)

    def ttou(self):
        if self.target > 1:
            self.target -= 1
            self.server.send_signal(signal.SIGTTOU)

    def kill_worker(self):
        workers = self.server.worker_pids()
        if workers:
            self.kills.append(time.monotonic())
            # It may have exited since it was listed (max_requests): then nothing was killed.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.rng.choice(workers), signal.SIGKILL)

    def kill_zygote(self):
        for pid in self.server.zygotes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def unexplained_failures(exchanges, kills):
    return [e for e in exchanges
            if e.version is None and not any(e.start <= k <= e.end for k in kills)]


def stale_answers(exchanges, settled):
    number = lambda version: int(version[1:])  # noqa: E731
    stale = []
    for when, version in settled:
        stale += [e for e in exchanges
                  if e.version and e.start > when and number(e.version) < number(version)]
    return stale


@pytest.mark.timeout(SECONDS + 120)
def test_chaos_converges_and_loses_only_what_kill_9_took(start_server, tmp_path):
    seed = int(os.environ.get("RGT_CHAOS_SEED", time.time_ns() % 1_000_000))
    copy_lifecycle(tmp_path)
    server = start_server("lifecycle", "-w", "2", "--max-requests", "50", "--graceful-timeout",
                          str(GRACEFUL), "--chdir", tmp_path)
    driver = Driver(server, tmp_path, random.Random(seed))
    deadline = time.monotonic() + SECONDS
    with Clients(server, deadline + 30) as clients:
        while time.monotonic() < deadline:
            driver.act()
            time.sleep(driver.rng.uniform(0.05, 0.4))  # the operator's pace, not a settling wait
        # Still under load: every answer after the last reload settled counts as stale or not.
        newest = f"v{driver.good}"
        wait_until(lambda: {server.get("/").text.split()[0] for _ in range(10)} == {newest}, 20,
                   message=f"only {newest} answering (seed {seed})")
    # Without the load, max_requests stops replacing workers and the count can settle.
    wait_until(lambda: len(server.worker_pids()) == driver.target, 20,
               message=f"{driver.target} workers (seed {seed})")
    exchanges = clients.exchanges
    context = f"seed {seed}, actions {driver.actions}"
    assert len(exchanges) > 200, f"too little load: {len(exchanges)}; {context}"
    failed = unexplained_failures(exchanges, driver.kills)
    assert not failed, f"{len(failed)} failures with no kill -9 in flight: {failed[:5]}; {context}"
    stale = stale_answers(exchanges, driver.settled)
    lines = [line for e in stale[:3] for line in server.log_text().splitlines() if e.detail in line]
    assert not stale, (f"answers from older code after a reload settled: {stale[:5]}; settled "
                       f"{driver.settled}; {context}; log of those workers: {lines}")
    started = time.monotonic()
    assert server.stop(signal.SIGTERM, timeout=GRACEFUL + 2) == 0
    assert time.monotonic() - started <= GRACEFUL + 2
