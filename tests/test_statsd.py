"""statsd with gunicorn's names: a UDP (or unix datagram) socket in the test receives the lines,
and the counts are exact; a statsd server that is not there never fails a request."""
import os
import re
import signal
import socket
from concurrent.futures import ThreadPoolExecutor

from helpers.metrics import value
from helpers.server import wait_until

LINE_RE = re.compile(r"^(?P<name>[^:]+):(?P<value>[^|]+)\|(?P<kind>c|g|ms)(?P<rate>\|@[\d.]+)?(?P<tags>\|#.*)?$")


class Receiver:
    """A datagram socket that collects every statsd line sent to it."""

    def __init__(self, family=socket.AF_INET, path=None):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(path or ("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.lines = []

    @property
    def address(self):
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def drain(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return self.lines
            assert len(data) <= 8192, f"a {len(data)}-byte datagram"
            for line in data.decode().splitlines():
                assert LINE_RE.match(line), line
                self.lines.append(line)

    def total(self, name):
        """The sum of the values of counter `name` received so far."""
        return sum(float(m["value"]) for m in map(LINE_RE.match, self.drain())
                   if m["name"] == name and m["kind"] == "c")

    def values(self, name, kind):
        return [float(m["value"]) for m in map(LINE_RE.match, self.drain())
                if m["name"] == name and m["kind"] == kind]

    def close(self):
        self.sock.close()


def test_counts_are_exact_under_gunicorns_names(start_server):
    receiver = Receiver()
    try:
        server = start_server("basic", "-w", "2", "--statsd-host", receiver.address,
                              "--statsd-prefix", "web")
        with ThreadPoolExecutor(4) as pool:
            paths = ["/hello"] * 30 + ["/nope"] * 10
            statuses = list(pool.map(lambda p: server.get(p).status, paths))
        assert statuses.count(200) == 30 and statuses.count(404) == 10
        wait_until(lambda: receiver.total("web.gunicorn.requests") >= 40, 15, message="40 requests")
        assert receiver.total("web.gunicorn.requests") == 40
        assert receiver.total("web.gunicorn.request.status.200") == 30
        assert receiver.total("web.gunicorn.request.status.404") == 10
        durations = receiver.values("web.gunicorn.request.duration", "ms")
        assert len(durations) == 40 and all(0 <= d < 10_000 for d in durations), durations
        wait_until(lambda: 2.0 in receiver.values("web.gunicorn.workers", "g"), 15,
                   message="the master's gunicorn.workers gauge")
        assert all("|@1.0" in l for l in receiver.lines if "|c" in l)
        server.get("/raise?when=before&token=statsd")
        wait_until(lambda: receiver.total("web.gunicorn.log.exception") == 1, 15,
                   message="gunicorn.log.exception")
        assert receiver.total("web.gunicorn.log.error") == 0
        os.kill(server.worker_pids()[0], signal.SIGKILL)
        wait_until(lambda: receiver.total("web.gunicorn.log.error") >= 1, 15,
                   message="gunicorn.log.error for the killed worker")
    finally:
        receiver.close()


def test_a_timeout_counts_as_critical(start_server):
    receiver = Receiver()
    try:
        server = start_server("lifecycle", "-w", "1", "-t", "2", "--statsd-host", receiver.address)
        sock = socket.create_connection((server.host, server.port), timeout=20)
        sock.sendall(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
        line = server.wait_for_log(r"\[CRITICAL\] WORKER TIMEOUT \(pid:\d+\)", timeout=20)
        assert line
        wait_until(lambda: receiver.total("gunicorn.log.critical") == 1, 15,
                   message="gunicorn.log.critical")
        sock.close()
    finally:
        receiver.close()


def test_dogstatsd_tags_and_a_unix_datagram_socket(start_server, tmp_path):
    path = str(tmp_path / "statsd.sock")
    receiver = Receiver(socket.AF_UNIX, path)
    try:
        server = start_server("basic", "--statsd-host", f"unix:{path}",
                              "--dogstatsd-tags", "env:test,team:web")
        for _ in range(5):
            assert server.get("/hello").status == 200
        wait_until(lambda: receiver.total("gunicorn.requests") == 5, 15, message="5 requests")
        assert all(l.endswith("|#env:test,team:web") for l in receiver.lines), receiver.lines
    finally:
        receiver.close()


def test_a_missing_statsd_server_never_fails_a_request(start_server, tmp_path):
    server = start_server("basic", "--statsd-host", f"unix:{tmp_path / 'nobody.sock'}",
                          "--metrics-bind", "127.0.0.1:0")
    for _ in range(20):
        assert server.get("/hello").status == 200
    def errors():
        return value(server.metrics()[1], "rgunicorn_statsd_send_errors_total")
    wait_until(lambda: errors() >= 1, 15, message="send errors counted")
    server.wait_for_log(r"statsd: cannot send to unix:\S+nobody\.sock: .*logged once a minute")
    for _ in range(20):
        assert server.get("/hello").status == 200
    wait_until(lambda: errors() >= 2, 15, message="more send errors")
    per_process = re.findall(r"\[(\d+)\] \[WARNING\] statsd: cannot send", server.log_text())
    assert len(per_process) == len(set(per_process)), "each process logs it once a minute"
