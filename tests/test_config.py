"""Configuration: CLI, TOML file, RGUNICORN_CMD_ARGS precedence, validation errors, check/print-config."""
import socket
import textwrap
import tomllib

import pytest

from helpers.server import APPS, run_to_exit


@pytest.fixture
def toml_file(write_config):
    """write(text, name) -> path of a TOML config file with that (dedented) content."""
    return lambda text, name="rgunicorn.toml": write_config(text, name)


def run_config(*args, env=None):
    """Run the binary on a config that must make it exit (port 0 in case it does start)."""
    return run_to_exit(["basic", "--chdir", APPS, "--bind", "127.0.0.1:0", *args], env=env, timeout=10)


def printed_config(*args, env=None):
    """--print-config output parsed as TOML."""
    proc = run_config("--print-config", *args, env=env)
    assert proc.returncode == 0, proc.stderr_text()
    return tomllib.loads(proc.stdout_text())


def assert_usage_error(proc, *needles):
    """Exit code 2 and a message naming each of `needles` (key, value...)."""
    stderr = proc.stderr_text()
    assert proc.returncode == 2, f"rc={proc.returncode}\n{stderr}"
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in stderr:\n{stderr}"


@pytest.mark.parametrize("args, needles", [
    (("--workers", "0"), ("workers", "0")),
    (("--workers", "four"), ("workers", "four")),
    (("--threads=-3",), ("threads", "-3")),
    (("--timeout", "soon"), ("timeout", "soon")),
    (("-k", "eventlet"), ("eventlet",)),
    (("--log-level", "loud"), ("loud",)),
    (("--bind", "127.0.0.1:notaport"), ("notaport",)),
    (("--no-such-option",), ("--no-such-option",)),
])
def test_bad_command_line_exits_2(args, needles):
    assert_usage_error(run_config(*args), *needles)


@pytest.mark.parametrize("content, needles", [
    ('workers = "four"\n', ("workers", "four")),
    ("wrokers = 2\n", ("wrokers",)),
    ("timeout = -5\n", ("timeout", "-5")),
    ("workers = 2\nworkers = [\n", ()),
])
def test_bad_config_file_exits_2(toml_file, content, needles):
    assert_usage_error(run_config("-c", toml_file(content)), *needles)


def test_missing_config_file_exits_2(tmp_path):
    missing = tmp_path / "nope.toml"
    assert_usage_error(run_config("-c", missing), "nope.toml")


def test_bad_value_in_env_args_exits_2():
    assert_usage_error(run_config(env={"RGUNICORN_CMD_ARGS": "--workers 0"}), "workers")


def test_check_config_accepts_a_valid_config(toml_file):
    path = toml_file('workers = 3\nthreads = 2\ntimeout = 12\nbind = ["127.0.0.1:0"]\n')
    proc = run_config("-c", path, "--check-config")
    assert proc.returncode == 0, proc.stderr_text()


def test_check_config_rejects_a_bad_config(toml_file):
    assert_usage_error(run_config("-c", toml_file("workers = 0\n"), "--check-config"), "workers")


def test_print_config_is_toml_with_the_merged_settings(toml_file):
    path = toml_file('timeout = 7\nbind = ["127.0.0.1:0"]\n')
    cfg = printed_config("-c", path, "--workers", "3", "--threads", "2")
    assert cfg["workers"] == 3
    assert cfg["threads"] == 2
    assert float(cfg["timeout"]) == 7
    bind = cfg["bind"] if isinstance(cfg["bind"], list) else [cfg["bind"]]
    assert bind == ["127.0.0.1:0"]
    for key in ("graceful_timeout", "keepalive", "max_requests", "limit_request_line", "preload_app"):
        assert key in cfg, f"{key} missing from --print-config"


def test_print_config_defaults():
    cfg = printed_config()
    assert cfg["workers"] == 1
    assert cfg["threads"] == 1
    assert float(cfg["timeout"]) == 30


@pytest.mark.parametrize("file_workers, env_workers, cli_workers, expected", [
    (2, None, None, 2),
    (2, 3, None, 3),
    (2, 3, 4, 4),
    (None, 3, 4, 4),
    (None, 3, None, 3),
])
def test_precedence(toml_file, file_workers, env_workers, cli_workers, expected):
    """defaults < file < RGUNICORN_CMD_ARGS < command line."""
    args = []
    if file_workers is not None:
        args += ["-c", toml_file(f"workers = {file_workers}\n")]
    if cli_workers is not None:
        args += ["--workers", str(cli_workers)]
    env = {"RGUNICORN_CMD_ARGS": f"--workers {env_workers}"} if env_workers is not None else None
    assert printed_config(*args, env=env)["workers"] == expected


def test_layers_merge_key_by_key(toml_file):
    path = toml_file("timeout = 7\nworkers = 2\n")
    cfg = printed_config("-c", path, "--threads", "2", env={"RGUNICORN_CMD_ARGS": "--workers 3"})
    assert (cfg["workers"], cfg["threads"], float(cfg["timeout"])) == (3, 2, 7)


@pytest.mark.parametrize("args, worker", [
    (("-k", "sync"), "sync"),
    (("--threads", "3"), "gthread"),
    (("--log-level", "debug"), "sync"),
    (("--log-level", "INFO", "--keep-alive", "3", "--graceful-timeout", "5"), "sync"),
])
def test_accepted_options_start_the_server(start_server, args, worker):
    srv = start_server("basic", *args)
    assert f"Using worker: {worker}" in srv.log_text()
    assert srv.get("/hello").status == 200


def test_server_runs_from_config_file(start_server, toml_file):
    path = toml_file('workers = 2\nthreads = 2\nbind = ["127.0.0.1:0"]\n')
    srv = start_server("basic", "-c", path, bind=False, workers=2)
    assert "Using worker: gthread" in srv.log_text()
    assert len(srv.worker_pids()) == 2
    assert srv.json("/environ")["environ"]["wsgi.multithread"] is True


def test_server_takes_env_args(start_server):
    srv = start_server("basic", env={"RGUNICORN_CMD_ARGS": "--workers 2"}, workers=2)
    assert len(srv.worker_pids()) == 2


def test_raw_env_reaches_the_app(start_server):
    srv = start_server("basic", "-e", "RGT_ONE=first", "--env", "RGT_TWO=a=b")
    assert srv.json("/osenv?name=RGT_ONE")["value"] == "first"
    assert srv.json("/osenv?name=RGT_TWO")["value"] == "a=b"


def test_chdir_sets_the_working_directory(start_server):
    assert start_server("basic").json("/osenv")["cwd"] == str(APPS)


def test_pythonpath_adds_every_listed_directory(start_server, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (two / "pp_helper.py").write_text('GREETING = b"from two"\n')
    (one / "pp_app.py").write_text(textwrap.dedent('''\
        """App for the --pythonpath test."""
        from pp_helper import GREETING


        def application(environ, start_response):
            start_response("200 OK", [("Content-Length", str(len(GREETING)))])
            return [GREETING]
        '''))
    srv = start_server("pp_app", "--pythonpath", f"{one},{two}", chdir=False, cwd=tmp_path)
    assert srv.get("/").body == b"from two"


def _ipv6_available():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback")
def test_several_binds_ipv4_and_ipv6(start_server):
    srv = start_server("basic", "--bind", "127.0.0.1:0", "-b", "[::1]:0")
    assert {l[0] for l in srv.listeners} == {"127.0.0.1", "::1"}
    for listener in srv.listeners:
        assert srv.get("/hello", listener=listener).body == b"hello world"


def test_statsd_host_takes_gunicorns_default_port():
    """As gunicorn's validate_statsd_address: no port means 8125, and unix:PORT is a host named
    unix (gunicorn keeps that reading for compatibility); a bad one names the key."""
    assert printed_config("--statsd-host", "localhost")["statsd_host"] == "localhost:8125"
    assert printed_config("--statsd-host", "[::1]")["statsd_host"] == "[::1]:8125"
    assert printed_config("--statsd-host", "unix:9125")["statsd_host"] == "unix:9125"
    assert_usage_error(run_config("--statsd-host", "host:0"), "statsd_host", "host:0")
