"""config/caddy/Caddyfile and config/nginx/rgunicorn.conf, run with Debian's caddy and nginx in
front of rgunicorn serving the greenweb example on a unix socket."""
import hashlib
import json
import os
import re
import signal
import urllib.request

import pytest

from helpers.proxies import Proxy
from helpers.server import REPO, VENV, base_env, wait_until

GREENWEB = REPO / "examples" / "greenweb"
CONFIG = REPO / "config"


@pytest.fixture(scope="module")
def greenweb_on_socket(module_server, tmp_path_factory, greenweb_env):
    tmp = tmp_path_factory.mktemp("proxied")
    sock = tmp / "greenweb.sock"
    srv = module_server("greenweb.wsgi", "--chdir", GREENWEB, "--virtualenv", VENV,
                        "--bind", f"unix:{sock}", "--workers", "2", env=greenweb_env)
    static = tmp / "static"
    static.mkdir()
    (static / "hello.txt").write_text("static hello\n")
    return srv, sock, static


class DeployProxy(Proxy):
    """A proxy run with the repository's own config, in front of the greenweb socket
    (`upstream`), serving `static` itself."""

    def __init__(self, tmp, upstream, static):
        super().__init__(tmp, upstream)
        self.static = static

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self):
        """Until greenweb answers through the proxy (listening is not enough)."""
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.output()}")
            try:
                with urllib.request.urlopen(self.url("/api/status/"), timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_until(answers, 20, interval=0.05, message=f"{self.name} to answer")


class DeployCaddy(DeployProxy):
    name = binary = "caddy"

    def command(self, binary):
        tmp = self.tmp
        env = {**base_env(), "RGUNICORN_SOCKET": str(self.upstream),
               "CADDY_ADDRESS": f"http://127.0.0.1:{self.port}", "STATIC_ROOT": str(self.static),
               "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"),
               "XDG_CONFIG_HOME": str(tmp / "config")}
        return [binary, "run", "--adapter", "caddyfile",
                "--config", str(CONFIG / "caddy" / "Caddyfile")], env


class DeployNginx(DeployProxy):
    name = binary = "nginx"

    def command(self, binary):
        tmp = self.tmp
        site = (CONFIG / "nginx" / "rgunicorn.conf").read_text()
        site = site.replace("/run/rgunicorn/greenweb.sock", str(self.upstream))
        site = site.replace("/srv/greenweb/static/", f"{self.static}/")
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
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
        return [binary, "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"], base_env()


@pytest.mark.parametrize("make", [DeployCaddy, DeployNginx], ids=["caddy", "nginx"])
def test_the_example_served_through_the_proxy(greenweb_on_socket, tmp_path, make):
    srv, sock, static = greenweb_on_socket
    if os.geteuid() != 0 and make is DeployNginx:
        pytest.fail("the nginx test runs as root (its workers must reach the test's socket)")
    proxy = make(tmp_path, sock, static).start()
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
