"""Fixtures of the end-to-end suite: start real rgunicorn servers per test or per module, clean up."""
import os
import subprocess
import textwrap

import pytest

from helpers.apps import copy_lifecycle
from helpers.server import APPS, BIN, REPO, VENV, Server, base_env

GREENWEB = REPO / "examples" / "greenweb"
BIND_FLAGS = ("-b", "--bind")
LOG_TAIL = 4000  # characters of each live server's log attached to a failing test's report
_live_servers = []


def _option(args, *names):
    """Values of an option given as `-x V`, `--name V` or `--name=V` in an argument list."""
    values = []
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                values.append(args[i + 1])
            elif name.startswith("--") and arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
    return values


class Launcher:
    """Starts servers and remembers them so that fixture teardown stops every one of them."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self.servers = []

    def __call__(self, app, *args, env=None, cwd=None, workers=None, listeners=None,
                 bind=True, chdir=True, ready=True):
        """Start `rgunicorn APP ARGS` and wait until it listens and its workers booted.

        Adds `--bind 127.0.0.1:0` unless `bind=False` or the args bind, and `--chdir tests/apps`
        unless `chdir=False`. `workers` is the number of boot lines to wait for (default: the
        -w/--workers argument, else 1; 0 waits for none).
        """
        args = [str(a) for a in args]
        if bind and not _option(args, *BIND_FLAGS):
            args += ["--bind", "127.0.0.1:0"]
        if chdir and not _option(args, "--chdir"):
            args += ["--chdir", str(APPS)]
        if workers is None:
            workers = int((_option(args, "-w", "--workers") or ["1"])[-1])
        if listeners is None:
            listeners = max(1, len(_option(args, *BIND_FLAGS)))
        error_log = [p for p in _option(args, "--error-logfile") if p != "-"]
        state_dir = self._tmp.mktemp("state")
        server_env = {"RGT_STATE_DIR": str(state_dir), **(env or {})}
        server = Server([app] + args, env=server_env, cwd=cwd, workers=workers,
                        error_log=error_log[-1] if error_log else None, state_dir=state_dir)
        self.servers.append(server)
        _live_servers.append(server)
        if ready:
            server.wait_ready(listeners=listeners)
        return server

    def cleanup(self):
        errors = []
        for server in reversed(self.servers):
            _live_servers.remove(server)
            try:
                server.cleanup()
            except Exception as exc:  # noqa: BLE001 - clean the others up first, then report
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session", autouse=True)
def rgunicorn_binary():
    """The binary under test must exist (RGUNICORN_BIN, default target/debug/rgunicorn)."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"rgunicorn binary not found at {BIN}: run `cargo build` or set RGUNICORN_BIN")
    return BIN


@pytest.fixture
def start_server(tmp_path_factory):
    """Per-test server factory: start_server(app, *args, env=..., cwd=...) -> Server."""
    launcher = Launcher(tmp_path_factory)
    yield launcher
    launcher.cleanup()


@pytest.fixture
def write_config(tmp_path):
    """write(text, name) -> the path of a config file with that (dedented) text in tmp_path."""
    def write(text, name):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


@pytest.fixture
def app_dir(tmp_path):
    """A private copy of the lifecycle app, so a test can change its code (helpers.apps)."""
    return copy_lifecycle(tmp_path)


@pytest.fixture(scope="session")
def greenweb_env(tmp_path_factory):
    """Environment for greenweb with a freshly migrated (and seeded) database in a tmp dir."""
    python = VENV / "bin" / "python"
    if not os.access(python, os.X_OK):
        pytest.fail(f"no virtualenv with Django at {VENV}: set VIRTUAL_ENV (scripts/test does)")
    tmp = tmp_path_factory.mktemp("greenweb")
    env = {"GREENWEB_DB": str(tmp / "db.sqlite3"), "GREENWEB_DOWNLOAD_DIR": str(tmp / "downloads"),
           "GREENWEB_LOG_LEVEL": "WARNING"}
    done = subprocess.run([str(python), "manage.py", "migrate", "--noinput"], cwd=GREENWEB,
                          env=base_env(env), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """Per-module server factory, for servers that many tests share and none kills."""
    launcher = Launcher(tmp_path_factory)
    yield launcher
    launcher.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of every live server's error log to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _live_servers:
            log = server.log_text()
            report.sections.append((f"rgunicorn {server.pid} log (tail)", log[-LOG_TAIL:]))
