"""config/caddy/Caddyfile and config/nginx/rgunicorn.conf, run with Debian's caddy and nginx in
front of rgunicorn serving the greenweb example on a unix socket."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import urllib.request

import pytest

from helpers.server import REPO, VENV, base_env, wait_until

GREENWEB = REPO / "examples" / "greenweb"
CONFIG = REPO / "config"


@pytest.fixture(scope="module")
def greenweb_on_socket(module_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxied")
    env = {"GREENWEB_DB": str(tmp / "db.sqlite3"), "GREENWEB_DOWNLOAD_DIR": str(tmp / "dl"),
           "GREENWEB_LOG_LEVEL": "WARNING"}
    done = subprocess.run([str(VENV / "bin" / "python"), "manage.py", "migrate", "--noinput"],
                          cwd=GREENWEB, env=base_env(env), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    sock = tmp / "greenweb.sock"
    srv = module_server("greenweb.wsgi", "--chdir", GREENWEB, "--virtualenv", VENV,
                        "--bind", f"unix:{sock}", "--workers", "2", env=env)
    static = tmp / "static"
    static.mkdir()
    (static / "hello.txt").write_text("static hello\n")
    return srv, sock, static


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A proxy process this test started (its own session), stopped by pid."""

    def __init__(self, args, env, port, log):
        self.log = log
        self.port = port
        self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                     stdout=log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self):
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"proxy exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url("/api/status/"), timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(answers, 20, interval=0.05, message="the proxy to answer")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def caddy(sock, static, tmp):
    port = free_port()
    env = {**base_env(), "RGUNICORN_SOCKET": str(sock), "CADDY_ADDRESS": f"http://127.0.0.1:{port}",
           "STATIC_ROOT": str(static), "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"),
           "XDG_CONFIG_HOME": str(tmp / "config")}
    args = [shutil.which("caddy") or "/usr/bin/caddy", "run", "--adapter", "caddyfile",
            "--config", str(CONFIG / "caddy" / "Caddyfile")]
    return Proxy(args, env, port, tmp / "caddy.log")


def nginx(sock, static, tmp):
    port = free_port()
    site = (CONFIG / "nginx" / "rgunicorn.conf").read_text()
    site = site.replace("/run/rgunicorn/greenweb.sock", str(sock))
    site = site.replace("/srv/greenweb/static/", f"{static}/").replace("listen 8080;",
                                                                       f"listen 127.0.0.1:{port};")
    (tmp / "site.conf").write_text(site)
    main = f"""
        user root;
        worker_processes 1;
        pid {tmp}/nginx.pid;
        error_log {tmp}/error.log;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {tmp}/body;
            proxy_temp_path {tmp}/proxy;
            fastcgi_temp_path {tmp}/fastcgi;
            uwsgi_temp_path {tmp}/uwsgi;
            scgi_temp_path {tmp}/scgi;
            include {tmp}/site.conf;
        }}
    """
    (tmp / "nginx.conf").write_text(main)
    args = [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp / "nginx.conf"),
            "-g", "daemon off;"]
    return Proxy(args, base_env(), port, tmp / "nginx.log")


@pytest.mark.parametrize("make", [caddy, nginx], ids=["caddy", "nginx"])
def test_the_example_served_through_the_proxy(greenweb_on_socket, tmp_path, make):
    srv, sock, static = greenweb_on_socket
    if os.geteuid() != 0 and make is nginx:
        pytest.fail("the nginx test runs as root (its workers must reach the test's socket)")
    proxy = make(sock, static, tmp_path)
    try:
        proxy.wait_ready()
        with urllib.request.urlopen(proxy.url("/api/plants/?limit=3"), timeout=10) as r:
            assert len(json.load(r)["plants"]) == 3
        body = os.urandom(3 * 1024 * 1024 + 17)
        upload = urllib.request.Request(proxy.url("/upload/"), data=body, method="POST")
        with urllib.request.urlopen(upload, timeout=30) as r:
            assert json.load(r)["sha256"] == hashlib.sha256(body).hexdigest()
        with urllib.request.urlopen(proxy.url("/static/hello.txt"), timeout=10) as r:
            assert r.read() == b"static hello\n"
        mark = srv.log_mark()
        srv.send_signal(signal.SIGHUP)
        srv.wait_for(r"reload complete", after=mark)
        with urllib.request.urlopen(proxy.url("/api/status/"), timeout=10) as r:
            assert r.status == 200
    finally:
        proxy.stop()
    assert re.search(r"Listening at: unix:", srv.log_text())
