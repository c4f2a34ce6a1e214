"""systemd integration through the real binary: sd_notify to a fake NOTIFY_SOCKET (READY=1 with
STATUS= after boot, RELOADING=1 with MONOTONIC_USEC then READY=1 on HUP, STOPPING=1 on TERM,
WATCHDOG=1) and socket activation (LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES replace --bind)."""
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from unittest import mock

import pytest

import helpers.server as server_module
from helpers.server import BOOT_RE, LISTEN_RE

NOTIFY_TIMEOUT = 20.0


def monotonic_usec():
    """CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC (time.monotonic on Linux)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class NotifySocket:
    """A unix datagram socket standing in for systemd's: collects every sd_notify message.

    `address` is the NOTIFY_SOCKET value: a path, or `@name` for the abstract namespace.
    """

    def __init__(self, address):
        self.address = address
        self._bind_to = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self._bind_to)
        self.sock.settimeout(0.1)
        self.messages = []  # (receive time in monotonic µs, {key: value})
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self):
        while not self._closing:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self._cond:
                self.messages.append((monotonic_usec(), fields))
                self._cond.notify_all()

    def env(self, **extra):
        return {"NOTIFY_SOCKET": self.address, **extra}

    def wait_for(self, key, value="1", after=0, timeout=NOTIFY_TIMEOUT):
        """The first message from index `after` on that sets `key` to `value` (None: any value).

        Returns (index, receive time µs, fields).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self.messages)):
                    received, fields = self.messages[i]
                    if key in fields and value in (None, fields[key]):
                        return i, received, fields
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {key}={value} after message {after} within {timeout}s; "
                                         f"got {self.messages}")
                self._cond.wait(min(remaining, 0.2))

    def count(self, key, value="1"):
        with self._cond:
            return sum(1 for _, fields in self.messages if fields.get(key) == value)

    def close(self):
        self._closing = True
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def notify():
    """A fake NOTIFY_SOCKET at a short filesystem path (sun_path holds 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="rgn-")
    sock = NotifySocket(os.path.join(directory, "notify"))
    yield sock
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def test_ready_with_worker_count_after_boot(start_server, notify):
    srv = start_server("basic", "-w", "2", env=notify.env())
    index, _, ready = notify.wait_for("READY")
    earlier = [f for _, f in notify.messages[:index] if {"READY", "RELOADING", "STOPPING"} & set(f)]
    assert not earlier, notify.messages
    assert re.search(r"\b2\b", ready.get("STATUS", "")), f"STATUS should give the worker count: {ready}"
    assert len(srv.worker_pids()) == 2
    assert srv.get("/hello").body == b"hello world"
    time.sleep(0.5)
    assert notify.count("READY") == 1, notify.messages
    assert notify.count("STOPPING") == 0


def test_hup_sends_reloading_with_monotonic_usec_then_ready(start_server, notify):
    srv = start_server("basic", env=notify.env())
    first, _, _ = notify.wait_for("READY")
    old_workers = srv.worker_pids()
    mark = srv.log_mark()
    before = monotonic_usec()
    srv.send_signal(signal.SIGHUP)
    reloading, received, fields = notify.wait_for("RELOADING", after=first + 1)
    stamp = int(fields["MONOTONIC_USEC"])
    assert before <= stamp <= received, (before, stamp, received)
    ready, _, _ = notify.wait_for("READY", after=reloading + 1)
    assert ready > reloading
    # READY=1 comes once the new workers serve, when the reload is complete (model_tests has the
    # order of the two); the log line is read from a pipe, so it may arrive a moment later.
    srv.wait_for(r"reload complete", after=mark, timeout=5)
    new_boot = srv.wait_for(BOOT_RE.pattern, after=mark)[0]
    assert int(new_boot.group(2)) not in old_workers
    assert srv.get("/hello").body == b"hello world"
    assert notify.count("STOPPING") == 0


def test_term_sends_stopping(start_server, notify):
    srv = start_server("basic", env=notify.env())
    ready, _, _ = notify.wait_for("READY")
    assert srv.stop() == 0
    stopping, _, _ = notify.wait_for("STOPPING", after=ready + 1)
    assert stopping > ready


def test_watchdog_pings_at_half_watchdog_usec(start_server, notify):
    start_server("basic", env=notify.env(WATCHDOG_USEC="2000000"))
    notify.wait_for("READY")
    first, t1, _ = notify.wait_for("WATCHDOG", timeout=6)
    second, t2, _ = notify.wait_for("WATCHDOG", after=first + 1, timeout=6)
    assert 0.3e6 <= t2 - t1 <= 2.0e6, f"pings {t2 - t1} µs apart; WATCHDOG_USEC is 2 s"


def test_watchdog_for_another_pid_is_left_alone(start_server, notify):
    start_server("basic", env=notify.env(WATCHDOG_USEC="1000000", WATCHDOG_PID="1"))
    notify.wait_for("READY")
    time.sleep(2.5)
    assert notify.count("WATCHDOG") == 0, notify.messages


def test_abstract_notify_socket(start_server):
    sock = NotifySocket(f"@rgunicorn-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        start_server("basic", env=sock.env())
        _, _, ready = sock.wait_for("READY")
        assert "STATUS" in ready
    finally:
        sock.close()


# -- socket activation -----------------------------------------------------------------------

@contextlib.contextmanager
def activation(listener, listen_pid="$$", names="web"):
    """Servers started inside get `listener` as fd 3 plus LISTEN_PID, LISTEN_FDS=1 and
    LISTEN_FDNAMES, as systemd passes them: `sh -c '... exec rgunicorn ...'` keeps the shell's
    pid ($$) for rgunicorn, and the child dup2s the socket to fd 3 before exec."""
    real_popen = subprocess.Popen
    script = f'LISTEN_PID={listen_pid} LISTEN_FDS=1 LISTEN_FDNAMES={names} exec "$0" "$@"'
    fd = listener.fileno()

    def to_fd_3():
        if fd == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(fd, 3)  # the copy at 3 is inheritable

    def popen(args, **kwargs):
        kwargs.update(close_fds=False, preexec_fn=to_fd_3)
        return real_popen(["sh", "-c", script, *args], **kwargs)

    with mock.patch.object(server_module.subprocess, "Popen", popen):
        yield


def tcp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def test_socket_activation_serves_the_passed_socket_without_bind(start_server):
    listener = tcp_listener()
    port = listener.getsockname()[1]
    with activation(listener):
        srv = start_server("basic", "-w", "2", bind=False)
    listener.close()  # from now on only the server holds the socket
    assert srv.port == port, srv.listeners
    assert len(LISTEN_RE.findall(srv.log_text())) == 1, srv.log_text()
    assert ":8000" not in srv.log_text(), "the default bind must not be used"
    for _ in range(4):
        assert srv.get("/hello").body == b"hello world"
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert srv.json(f"/osenv?name={name}")["value"] is None, f"{name} leaked to the workers"
    assert srv.stop() == 0


def test_socket_activation_for_another_pid_is_ignored(start_server):
    listener = tcp_listener()
    try:
        with activation(listener, listen_pid="1"):
            srv = start_server("basic")  # with --bind 127.0.0.1:0
        assert srv.port != listener.getsockname()[1]
        assert len(srv.listeners) == 1
        assert srv.get("/hello").body == b"hello world"
        assert srv.json("/osenv?name=LISTEN_FDS")["value"] is None
    finally:
        listener.close()


def test_usr2_announces_the_new_master_as_mainpid(start_server, notify, tmp_path):
    pidfile = tmp_path / "app.pid"
    srv = start_server("basic", "-w", "1", "--pid", pidfile, env=notify.env())
    notify.wait_for("READY")
    mark = srv.log_mark()
    srv.send_signal(signal.SIGUSR2)
    new_master = int(srv.wait_for_log(r"\[(\d+)\] \[INFO\] Starting rgunicorn", after=mark).group(1))
    try:
        notify.wait_for("MAINPID", str(new_master))
        oldbin = tmp_path / "app.pid.oldbin"
        server_module.wait_until(lambda: oldbin.exists() and pidfile.exists(), 20,
                                 message="pidfile and pidfile.oldbin")
        assert int(oldbin.read_text()) == srv.pid
        assert int(pidfile.read_text()) == new_master
    finally:
        os.kill(new_master, signal.SIGTERM)
        server_module.wait_until(lambda: server_module.proc_start_time(new_master) is None, 20,
                                 message="the new master to exit")
