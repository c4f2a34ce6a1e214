"""Debian's nginx and caddy in front of rgunicorn, for tests/test_proxy_differential.py.

Each proxy is started by the test on 127.0.0.1 with a config written under a temporary directory,
never as a service, and only the pid started here is ever killed. Between proxy and rgunicorn sits
a Tap: a transparent relay on unix sockets that keeps every byte of each upstream connection, so
the test can read what the proxy forwarded and what rgunicorn answered (the echo app's JSON says
what the app saw).
"""
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

from helpers.http import parse_responses
from helpers.server import wait_until

START_TIMEOUT = 15.0
# How long each proxy waits for a client's head or body: a request cut short is answered (408 or
# 400) and the connection closed after this, so no case needs a deadline of its own.
CLIENT_TIMEOUT_S = 2


class TapConn:
    """One upstream connection: the bytes the proxy sent (up) and rgunicorn's answers (down)."""

    def __init__(self):
        self.up = bytearray()
        self.down = bytearray()
        self.open = True


class Tap:
    """Listens on `path`, relays each connection to rgunicorn's unix socket `target`."""

    def __init__(self, path, target):
        self.path, self.target = str(path), str(target)
        self.conns = []
        self.lock = threading.Lock()
        self.last_byte = time.monotonic()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        # accept() is not woken by a close from another thread: look at `closing` now and then.
        self.listener.settimeout(0.2)
        self.closing = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.target)
            conn = TapConn()
            with self.lock:
                self.conns.append(conn)
            thread = threading.Thread(target=self._pump, args=(client, server, conn), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _pump(self, client, server, conn):
        """Relays both ways until both have ended; keeps what was sent. What one side sends after
        the other stopped reading is still kept, so `up` holds every byte the proxy sent, however
        early rgunicorn refused."""
        ends = {client: (server, conn.up), server: (client, conn.down)}
        live, deaf = [client, server], set()
        try:
            while live and not self.closing:
                readable, _, _ = select.select(live, [], [], 0.2)
                for sock in readable:
                    other, record = ends[sock]
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    with self.lock:
                        self.last_byte = time.monotonic()
                        record += data
                    if not data:
                        live.remove(sock)
                    try:
                        if other not in deaf:
                            other.sendall(data) if data else other.shutdown(socket.SHUT_WR)
                    except OSError:
                        deaf.add(other)
        finally:
            conn.open = False
            client.close()
            server.close()

    def snapshot(self):
        with self.lock:
            return [(bytes(c.up), bytes(c.down), c.open) for c in self.conns]

    def quiet_for(self):
        with self.lock:
            return time.monotonic() - self.last_byte

    def close(self):
        self.closing = True
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()


class ForwardedRequest:
    """A request as the proxy sent it upstream, split by a strict reading of HTTP/1.1."""

    def __init__(self, method, target, version, headers, body):
        self.method, self.target, self.version = method, target, version
        self.headers, self.body = headers, body
        self.complete = True

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None

    def as_environ_headers(self):
        """The HTTP_* / CONTENT_* keys a WSGI server makes of these fields ('_' names dropped)."""
        out = {}
        for name, value in self.headers:
            if "_" in name:
                continue
            key = name.upper().replace("-", "_")
            key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
            out[key] = f"{out[key]},{value}" if key in out else value
        return out


class Ambiguous(Exception):
    """The proxy forwarded bytes that two strict parsers could read differently."""


def _dechunk(data, pos):
    body = bytearray()
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = data[pos:end].split(b";")[0]
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise Ambiguous(f"chunk size {data[pos:end]!r}")
        size, pos = int(size_text, 16), end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", pos)
            while trailer_end not in (-1, pos):
                pos, trailer_end = trailer_end + 2, data.find(b"\r\n", trailer_end + 2)
            return None if trailer_end < 0 else (bytes(body), pos + 2)
        if len(data) < pos + size + 2:
            return None
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise Ambiguous("chunk data not followed by CRLF")
        body += data[pos:pos + size]
        pos += size + 2


def split_requests(data):
    """The requests in `data`: the complete ones, then (complete=False) one the proxy stopped
    sending halfway, of which only what came is known.

    Raises Ambiguous on anything a strict HTTP/1.1 parser would refuse: a bare CR or LF, a
    folded or nameless field, a repeated or malformed Content-Length, Content-Length with
    Transfer-Encoding, or a Transfer-Encoding other than chunked.
    """
    requests, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            # A head cut short (by the proxy: the tap keeps all it sent).
            line = data[pos:].split(b"\r\n")[0].decode("latin-1").split(" ")
            requests.append(ForwardedRequest(line[0], " ".join(line[1:2]), "", [], b""))
            requests[-1].complete = False
            break
        request = _head(data[pos:end])
        framed = _body(request, data, end + 4)
        if framed is None:
            request.complete = False
            requests.append(request)
            break
        request.body, pos = framed
        requests.append(request)
    return requests


def _head(head):
    if b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b""):
        raise Ambiguous(f"bare CR or LF in {head[:200]!r}")
    line, *fields = head.decode("latin-1").split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3:
        raise Ambiguous(f"request line {line!r}")
    headers = []
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name or name != name.strip() or field[:1] in " \t":
            raise Ambiguous(f"field line {field!r}")
        headers.append((name, value.strip(" \t")))
    return ForwardedRequest(*parts, headers, b"")


def _body(request, data, start):
    lengths = [v for n, v in request.headers if n.lower() == "content-length"]
    coding = request.header("Transfer-Encoding")
    if coding is not None:
        if lengths or coding.lower() != "chunked":
            raise Ambiguous(f"Transfer-Encoding {coding!r} with Content-Length {lengths}")
        return _dechunk(data, start)
    if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
        raise Ambiguous(f"Content-Length {lengths}")
    size = int(lengths[0]) if lengths else 0
    if len(data) < start + size:
        return None
    return bytes(data[start:start + size]), start + size


def exchanges(up, down):
    """Each request the proxy sent on one upstream connection, with rgunicorn's answer (or None)."""
    requests = split_requests(up)
    responses = parse_responses(down, [r.method for r in requests] or ["GET"]) if down else []
    if len(responses) > len(requests):
        raise AssertionError(f"{len(responses)} responses to {len(requests)} requests: {up[:300]!r}")
    return [(r, responses[i] if i < len(responses) else None) for i, r in enumerate(requests)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proxy:
    """A proxy process started by the test, listening on 127.0.0.1:port."""

    name = "proxy"

    def __init__(self, tmp, upstream):
        self.tmp, self.upstream = tmp, upstream
        self.proc = None
        self.port = None

    def start(self):
        """Starts the proxy on a free port; another process may take the port between the look-up
        and the bind, so a proxy that exits at once is started again on a new one (bounded)."""
        binary = shutil.which(self.binary)
        assert binary, f"{self.binary} is not installed: scripts/setup installs it (apt {self.binary})"
        for _ in range(5):
            self.port = free_port()
            argv, env = self.command(binary)
            self.log = open(self.tmp / f"{self.name}.out", "ab")
            self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            if self._wait_listening():
                return self
            self.stop()
        raise AssertionError(f"{self.name} did not start: {self.output()[-2000:]}")

    def _wait_listening(self):
        """Whether the proxy listens before START_TIMEOUT; False when it exited (the port was
        taken, say) or never came up."""
        def up_or_exited():
            if self.proc.poll() is not None:
                return "exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return "up"
            except OSError:
                return None
        try:
            return wait_until(up_or_exited, START_TIMEOUT, message=f"{self.name} listening") == "up"
        except AssertionError:
            return False

    def output(self):
        return (self.tmp / f"{self.name}.out").read_text(errors="replace")

    def stop(self):
        """Stops the one process started here, by its pid."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


class Nginx(Proxy):
    """nginx in front of an app server, request buffering on (the default), with what a site adds
    to reuse upstream connections: HTTP/1.1 and keepalive, where a desync would carry over from one
    client's request to the next. The client's Host is passed on as `$host`, which falls back to
    server_name when the client sent none: nginx drops a header whose value is empty, so
    gunicorn's examples/nginx.conf line `proxy_set_header Host $http_host` sends HTTP/1.1 without
    Host for an HTTP/1.0 client that sent none, which rgunicorn refuses (NginxHttpHost)."""

    name = binary = "nginx"
    host = "$host"
    upstream_options = """
            proxy_http_version 1.1;
            proxy_set_header Connection "";"""
    keepalive = "keepalive 8; keepalive_timeout 10s;"

    def command(self, binary):
        tmp = self.tmp
        config = f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    client_header_timeout {CLIENT_TIMEOUT_S}s;
    client_body_timeout {CLIENT_TIMEOUT_S}s;
    keepalive_timeout {CLIENT_TIMEOUT_S}s;
    upstream rgunicorn {{
        server unix:{self.upstream};
        {self.keepalive}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        location / {{
            proxy_pass http://rgunicorn;{self.upstream_options}
            proxy_set_header Host {self.host};
            proxy_set_header X-Client-Port $remote_port;
            proxy_read_timeout 10s;
        }}
    }}
}}
"""
        path = tmp / "nginx.conf"
        path.write_text(config)
        return [binary, "-p", f"{tmp}/", "-e", f"{tmp}/nginx-error.log", "-c", str(path)], None


class NginxGunicornExample(Nginx):
    """nginx as gunicorn's examples/nginx.conf has it: HTTP/1.0 upstream, one connection per
    request, `proxy_set_header Host $http_host`."""

    name = "nginx-gunicorn-example"
    host = "$http_host"
    upstream_options = ""
    keepalive = ""


class NginxHttpHost(Nginx):
    """The keep-alive setup with gunicorn's `$http_host`: see `Nginx`."""

    name = "nginx-http-host"
    host = "$http_host"


class Caddy(Proxy):
    """caddy's reverse_proxy with its defaults (HTTP/1.1 upstream, keep-alive, Host passed on),
    HTTP/1.1 only on the client side (no TLS here)."""

    name = binary = "caddy"

    def command(self, binary):
        tmp = self.tmp
        timeout = f"{CLIENT_TIMEOUT_S}s"
        config = {
            "admin": {"disabled": True},
            "logging": {"logs": {"default": {
                "writer": {"output": "file", "filename": str(tmp / "caddy.log")}, "level": "INFO"}}},
            "storage": {"module": "file_system", "root": str(tmp / "caddy-data")},
            "apps": {"http": {"servers": {"differential": {
                "listen": [f"127.0.0.1:{self.port}"],
                "protocols": ["h1"],
                "automatic_https": {"disable": True},
                "read_header_timeout": timeout, "read_timeout": timeout, "idle_timeout": timeout,
                "routes": [{"handle": [{
                    "handler": "reverse_proxy",
                    "upstreams": [{"dial": f"unix/{self.upstream}"}],
                    "transport": {"protocol": "http", "keep_alive": {"idle_timeout": "10s"}},
                    "headers": {"request": {"set": {
                        "X-Client-Port": ["{http.request.remote.port}"]}}},
                }]}],
            }}}},
        }
        path = tmp / "caddy.json"
        path.write_text(json.dumps(config))
        home = tmp / "caddy-home"
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_DATA_HOME": str(home / "data")}
        return [binary, "run", "--config", str(path)], env
