"""Start, watch and stop the real rgunicorn binary: log draining, port discovery, pid-safe cleanup."""
import contextlib
import json
import http.client
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers.http import (HTTPResponseData, UnixHTTPConnection, exchange_raw, open_raw, parse_responses,
                          request_bytes)

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "apps"
BIN = Path(os.environ.get("RGUNICORN_BIN") or REPO / "target" / "debug" / "rgunicorn")
VENV = Path(os.environ.get("VIRTUAL_ENV") or REPO / "venv")

# Generous deadlines: they only keep a broken server from hanging the suite.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
STOP_MARGIN = 2.0  # beyond graceful_timeout, for a master to reap its last children and exit
REQUEST_TIMEOUT = 20.0

LISTEN_RE = re.compile(r"Listening at: (?:http://(\[[^\]]+\]|[^:\s]+):(\d+)|unix:(\S+)) \((\d+)\)")
BOOT_RE = re.compile(r"\[(\d+)\] \[\w+\] Booting worker with pid: (\d+)")
_BOOT_LINE_RE = re.compile(BOOT_RE.pattern + r"[^\n]*\n")  # only lines written completely
# Variables of the test runner that must not leak into the servers under test.
SCRUBBED_ENV = ("RGUNICORN_CMD_ARGS", "GUNICORN_CMD_ARGS", "SCRIPT_NAME")


class ServerStartError(AssertionError):
    """The server did not get ready (exited early or never logged its listeners)."""


def base_env(extra=None):
    """The environment of a server under test: the runner's, scrubbed, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def proc_start_time(pid):
    """Start time (clock ticks since boot) of `pid`, or None when it is gone: identifies a pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


def proc_status(pid):
    """/proc/<pid>/status as a dict of str (e.g. VmHWM -> '12345 kB')."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def proc_title(pid):
    """The process title (first word of /proc/<pid>/cmdline), or "" when the process is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def proc_kib(pid, key):
    """A /proc/<pid>/status memory figure (VmHWM, VmRSS) in KiB."""
    return int(proc_status(pid)[key].split()[0])


def _last_option(args, name):
    """The value of the last `name V` or `name=V` in an argument list, or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def ctl(socket, *words, timeout=60):
    """Runs `rgunicorn ctl --socket SOCKET WORDS...`; returns (exit status, parsed answer)."""
    done = subprocess.run([str(BIN), "ctl", "--socket", str(socket), *words], capture_output=True,
                          text=True, timeout=timeout, env=base_env())
    answer = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, answer


def wait_until(predicate, timeout, interval=0.02, message="condition"):
    """Poll `predicate` until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class _Stream:
    """Text collected from one pipe or file by a background thread, waitable by regex."""

    def __init__(self, cond):
        self._cond = cond
        self._chunks = []
        self.closed = False

    def text(self):
        with self._cond:
            return "".join(self._chunks)

    def append(self, data):
        with self._cond:
            self._chunks.append(data)
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class Proc:
    """A started rgunicorn process whose stdout/stderr (or error-log file) are drained in threads."""

    def __init__(self, args, env=None, cwd=None, error_log=None):
        self.args = [str(BIN)] + [str(a) for a in args]
        self._cond = threading.Condition()
        self.stdout = _Stream(self._cond)
        self.stderr = _Stream(self._cond)
        self.error_log_path = Path(error_log) if error_log else None
        self.file_log = _Stream(self._cond) if error_log else None
        self._workers = {}  # pid -> start time, as seen when its boot line arrived
        self._workers_lock = threading.Lock()
        self._scanned = 0  # error-log offset up to which boot lines were recorded
        self.popen = subprocess.Popen(
            self.args, cwd=str(cwd or REPO), env=base_env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.pid = self.popen.pid
        self._threads = [
            threading.Thread(target=self._drain, args=(self.popen.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._drain, args=(self.popen.stderr, self.stderr), daemon=True),
        ]
        if self.file_log:
            self._threads.append(threading.Thread(target=self._tail, daemon=True))
        for t in self._threads:
            t.start()

    # -- collecting -------------------------------------------------------------------------
    def _drain(self, pipe, stream):
        for line in iter(pipe.readline, b""):
            stream.append(line.decode("utf-8", "replace"))
            self._note_workers()
        pipe.close()
        stream.close()

    def _tail(self):
        pos = 0
        while True:
            exited = self.popen.poll() is not None
            try:
                with open(self.error_log_path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            if data:
                pos += len(data)
                self.file_log.append(data.decode("utf-8", "replace"))
                self._note_workers()
            elif exited:
                self.file_log.close()
                return
            else:
                time.sleep(0.02)

    def _note_workers(self):
        """Record each newly logged worker with its start time (scans only complete new lines)."""
        with self._workers_lock:
            text = self.log_text()
            for m in _BOOT_LINE_RE.finditer(text, self._scanned):
                self._workers.setdefault(int(m.group(2)), proc_start_time(int(m.group(2))))
            self._scanned = max(self._scanned, text.rfind("\n") + 1)

    # -- reading ----------------------------------------------------------------------------
    @property
    def error_log(self):
        return self.file_log or self.stderr

    def log_text(self):
        """The error log so far (stderr, or the --error-logfile file when one was given)."""
        return self.error_log.text()

    def stdout_text(self):
        return self.stdout.text()

    def stderr_text(self):
        return self.stderr.text()

    def wait_for(self, regex, timeout=START_TIMEOUT, stream=None, after=0, count=1):
        """Wait until `regex` matches `count` times in the stream's text past offset `after`.

        Returns the list of matches. Fails early, with the log, if the process exits first.
        """
        stream = stream or self.error_log
        pattern = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = "".join(stream._chunks)
                found = list(pattern.finditer(text, after))
                if len(found) >= count:
                    return found
                if stream.closed:
                    raise ServerStartError(
                        f"process {self.pid} exited (rc={self.popen.poll()}) before logging "
                        f"{regex!r} x{count}\n--- log ---\n{self.log_text()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {regex!r} x{count}\n"
                        f"--- log ---\n{self.log_text()}")
                self._cond.wait(min(remaining, 0.2))

    def wait_for_log(self, regex, timeout=START_TIMEOUT, after=0):
        """Wait for one match of `regex` in the error log; returns the re.Match."""
        return self.wait_for(regex, timeout=timeout, after=after)[0]

    def log_mark(self):
        """An offset into the error log; pass as `after=` to wait only for newer lines."""
        return len(self.log_text())

    def worker_pids(self, alive_only=True):
        """Pids of the workers from the boot lines, in boot order (the live ones by default)."""
        self._note_workers()
        pids = list(self._workers)
        if alive_only:
            pids = [p for p in pids if self._is_ours(p)]
        return pids

    def wait_workers(self, count, gone=(), timeout=20, message="the workers"):
        """Wait until exactly `count` workers live and none of `gone` is among them; returns them.

        Each poll reads the pids once: a worker killed between two reads can be counted live by
        the first and dead by the second, which passed a wait before its replacement existed."""
        def settled():
            pids = self.worker_pids()
            return pids if len(pids) == count and set(gone).isdisjoint(pids) else None
        return wait_until(settled, timeout, message=message)

    def _is_ours(self, pid):
        started = self._workers.get(pid)
        return started is not None and proc_start_time(pid) == started

    # -- stopping ---------------------------------------------------------------------------
    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the master to exit; returns its code, or None at the deadline."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def send_signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop_deadline(self):
        """How long a master may take to stop on TERM: its graceful_timeout plus a margin."""
        graceful = _last_option(self.args, "--graceful-timeout")
        return float(graceful if graceful is not None else 30) + STOP_MARGIN

    def children(self):
        """The master's live child processes (zygotes and workers) as {pid: start time}."""
        found = {}
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                pids = (task / "children").read_text().split()
            except OSError:
                continue
            for pid in map(int, pids):
                started = proc_start_time(pid)
                if started is not None:
                    found[pid] = started
        return found

    def zygotes(self):
        """The master's live children whose title says zygote."""
        return [pid for pid in self.children() if proc_title(pid).startswith("rgunicorn: zygote")]

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signal the master and wait for it (default deadline: stop_deadline()); returns its
        exit code. A master still running at the deadline, or children of it that outlive it,
        fail the test (after both are killed): a server that ignores TERM must not pass.
        """
        timeout = self.stop_deadline() if timeout is None else timeout
        children = self.children() if self.popen.poll() is None else {}
        self.send_signal(sig)
        rc = self.wait_exit(timeout)
        problems = []
        if rc is None:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)
            problems.append(f"master {self.pid} was still running {timeout}s after "
                            f"{signal.Signals(sig).name}; killed it")
        left = [pid for pid, started in children.items() if proc_start_time(pid) == started]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if left and rc is not None:
            problems.append(f"children {left} of master {self.pid} outlived it; killed them")
        if problems:
            raise AssertionError("; ".join(problems) + f"\n--- log ---\n{self.log_text()[-4000:]}")
        return rc

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
        self.reap_workers()

    def reap_workers(self, timeout=5.0):
        """KILL any of this server's own workers (pid and start time match) that outlived it."""
        leftovers = self.worker_pids()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not self.worker_pids(), timeout, message="leftover workers to die")
        return leftovers

    def cleanup(self):
        """Fixture teardown: TERM and a deadline (failing the test if it is missed), then KILL."""
        try:
            if self.popen.poll() is None:
                self.stop()
        finally:
            self.reap_workers()
            for f in (self.popen.stdout, self.popen.stderr):
                if f and not f.closed:
                    try:
                        f.close()
                    except OSError:
                        pass


class Server(Proc):
    """A running rgunicorn that listens; talks HTTP to it over TCP or a unix socket."""

    def __init__(self, args, env=None, cwd=None, workers=1, error_log=None, state_dir=None):
        super().__init__(args, env=env, cwd=cwd, error_log=error_log)
        self.state_dir = Path(state_dir) if state_dir else None
        self.expected_workers = workers
        self.listeners = []
        self.host = self.port = self.unix_path = None

    def wait_ready(self, listeners=1, timeout=START_TIMEOUT):
        """Wait for the listener lines and the boot lines of the expected workers."""
        for m in self.wait_for(LISTEN_RE.pattern, timeout=timeout, count=listeners):
            host, port, path, master = m.groups()
            assert int(master) == self.pid, f"Listening line names pid {master}, master is {self.pid}"
            self.listeners.append((host.strip("[]"), int(port)) if port else path)
        tcp = [l for l in self.listeners if isinstance(l, tuple)]
        unix = [l for l in self.listeners if isinstance(l, str)]
        if tcp:
            self.host, self.port = tcp[0]
        if unix:
            self.unix_path = unix[0]
        if self.expected_workers:
            self.wait_for(BOOT_RE.pattern, timeout=timeout, count=self.expected_workers)
        return self

    @property
    def url(self):
        host = f"[{self.host}]" if ":" in (self.host or "") else self.host
        return f"http://{host}:{self.port}"

    def address(self):
        return self.unix_path if self.port is None else (self.host, self.port)

    def connection(self, timeout=REQUEST_TIMEOUT, listener=None):
        """A new http.client connection (keep-alive capable) to the server."""
        target = listener or self.address()
        if isinstance(target, str):
            return UnixHTTPConnection(target, timeout=timeout)
        return http.client.HTTPConnection(target[0], target[1], timeout=timeout)

    def request(self, method, path, headers=None, body=None, timeout=REQUEST_TIMEOUT, listener=None):
        """One request on a fresh connection; returns HTTPResponseData (status, headers, body)."""
        conn = self.connection(timeout=timeout, listener=listener)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            return HTTPResponseData.from_http_client(conn.getresponse(), method)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def json(self, path, method="GET", **kw):
        resp = self.request(method, path, **kw)
        assert resp.status == 200, f"{method} {path} -> {resp.status}: {resp.body[:500]!r}"
        return resp.json()

    def metrics(self, accept=None):
        """(Content-Type, text) of a GET of /metrics at the address the server logged serving it
        at (--metrics-bind)."""
        url = self.wait_for_log(r"Serving metrics at: (http://\S+/metrics)").group(1)
        request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["Content-Type"], response.read().decode()

    def records(self, name):
        """Lines the app appended to `name` in this server's state dir (see apps/basic.record)."""
        path = self.state_dir / name
        return path.read_text().splitlines() if path.exists() else []

    def wait_for_record(self, name, line, timeout=15.0):
        """Wait until the app recorded `line` (None: any line) in the state file `name`.

        Returns the first matching line.
        """
        def found():
            return next((l for l in self.records(name) if line is None or l == line), None)
        return wait_until(found, timeout, message=f"{line!r} in {name} (have {self.records(name)})")

    def wait_started(self, token, timeout=15.0):
        """Wait until /sleep or /block with ?token= is inside the app; returns the worker pid."""
        return int(self.wait_for_record(f"{token}.started", None, timeout))

    @contextlib.contextmanager
    def in_flight(self, token, path=None, timeout=40, max_ms=30000):
        """Run a GET in a background thread; yields (future, worker pid) once the app has it.

        `path` defaults to /block?token=TOKEN&max_ms=MAX_MS, which ends early only on release().
        """
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(self.get, path or f"/block?token={token}&max_ms={max_ms}", timeout=timeout)
            yield future, self.wait_started(token)

    def release(self, token):
        """Let a /block?token= request return."""
        (self.state_dir / f"{token}.release").touch()

    def raw_socket(self, timeout=REQUEST_TIMEOUT):
        return open_raw(self.address(), timeout)

    def raw(self, data, timeout=10.0, expect_close=True):
        """Send raw bytes, read until the server closes (or the deadline); returns the bytes.

        With expect_close, the server not closing the connection by the deadline fails the test.
        """
        received, closed = exchange_raw(self.address(), data, timeout)
        if expect_close:
            assert closed, f"server kept the connection open; got so far: {received[:300]!r}"
        return received

    def raw_request(self, method, path, headers=None, body=b"", version="HTTP/1.1", close=True):
        """One request sent byte for byte (with Connection: close unless not `close`), read until
        the server closes. Returns (the only response, the raw bytes received).
        """
        hdrs = {**({"Connection": "close"} if close else {}), **(headers or {})}
        data = self.raw(request_bytes(method, path, hdrs, body, version))
        responses = parse_responses(data, (method,))
        assert len(responses) == 1, responses
        return responses[0], data


def run_to_exit(args, env=None, cwd=None, timeout=STOP_TIMEOUT):
    """Run the binary expecting it to exit by itself (config errors, boot errors, --check-config).

    Returns the finished Proc (.popen.returncode, .stdout_text(), .stderr_text()). Fails if it
    is still running at the deadline (and then kills it and any workers it logged).
    """
    proc = Proc(args, env=env, cwd=cwd)
    rc = proc.wait_exit(timeout)
    if rc is None:
        proc.kill()
        proc.cleanup()
        raise AssertionError(f"{args} still running after {timeout}s\n{proc.log_text()}")
    proc.cleanup()
    proc.returncode = rc
    return proc
