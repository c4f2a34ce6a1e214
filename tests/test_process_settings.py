"""gunicorn's process settings through the real binary: pidfile, umask and socket_mode on unix
socket files, user and group for the workers, --reload, and their config errors."""
import grp
import os
import pwd
import re
import stat
import subprocess
import textwrap
import time
import tomllib
import urllib.request

import pytest

from helpers.server import APPS, BOOT_RE, proc_status, run_to_exit, wait_until


def run_briefly(*args):
    """Run the binary on settings that must make it exit by itself."""
    return run_to_exit(["basic", "--chdir", APPS, "--bind", "127.0.0.1:0", *args], timeout=15)


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def socket_mode(path):
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode), f"{path} is not a socket"
    return stat.S_IMODE(st.st_mode)


# -- pidfile ---------------------------------------------------------------------------------

def test_pidfile_holds_the_master_pid_and_is_removed_on_exit(start_server, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pidfile = run_dir / "rg.pid"
    srv = start_server("basic", "--pid", pidfile, "-w", "2")
    assert pidfile.read_text() == f"{srv.pid}\n"
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
    assert os.listdir(run_dir) == ["rg.pid"], "no temporary file may be left next to it"
    assert srv.stop() == 0
    assert not pidfile.exists()


def test_pidfile_from_the_config_file(start_server, tmp_path):
    pidfile = tmp_path / "from-file.pid"
    config = tmp_path / "rg.toml"
    config.write_text(f'pidfile = "{pidfile}"\n')
    srv = start_server("basic", "-c", config)
    assert int(pidfile.read_text()) == srv.pid


def test_pidfile_of_a_live_process_refuses_to_start(tmp_path):
    pidfile = tmp_path / "held.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # this test runner: alive, and not the server
    proc = run_briefly("--pid", pidfile)
    stderr = proc.stderr_text()
    assert proc.returncode == 1, f"rc={proc.returncode}\n{stderr}"
    assert re.search(rf"already running on PID {os.getpid()}", stderr, re.I), stderr
    assert "held.pid" in stderr, stderr
    assert not BOOT_RE.search(stderr), "no worker may start"
    assert pidfile.read_text() == f"{os.getpid()}\n", "the other process's file stays"


def test_stale_pidfile_is_replaced(start_server, tmp_path):
    pidfile = tmp_path / "stale.pid"
    pidfile.write_text(f"{dead_pid()}\n")
    srv = start_server("basic", "--pid", pidfile)
    assert pidfile.read_text() == f"{srv.pid}\n"
    assert srv.stop() == 0
    assert not pidfile.exists()


# -- umask and socket_mode -------------------------------------------------------------------

@pytest.mark.parametrize("args, mode", [
    ((), 0o777),  # gunicorn's default umask is 0
    (("-m", "027"), 0o750),  # a leading 0 means octal, as in gunicorn
    (("--umask", "0o077"), 0o700),
    (("--umask", "2"), 0o775),
    (("--umask", "0x12"), 0o755),
    (("--umask", "0o077", "--socket-mode", "660"), 0o660),
    (("--socket-mode", "0o600"), 0o600),
], ids=["default-0", "022-octal", "0o077", "decimal-2", "hex", "socket-mode-wins", "socket-mode"])
def test_unix_socket_mode_follows_umask_and_socket_mode(start_server, tmp_path, args, mode):
    path = tmp_path / "rg.sock"
    srv = start_server("basic", "--bind", f"unix:{path}", *args)
    assert oct(socket_mode(path)) == oct(mode)
    assert srv.get("/hello").body == b"hello world"


def test_umask_and_socket_mode_from_the_config_file(start_server, tmp_path):
    cases = [("umask = 0o007", 0o770), ('umask = "0o077"\nsocket_mode = "640"', 0o640)]
    for i, (text, mode) in enumerate(cases):
        path = tmp_path / f"cfg{i}.sock"
        config = tmp_path / f"rg{i}.toml"
        config.write_text(f'bind = "unix:{path}"\n{text}\n')
        start_server("basic", "-c", config, bind=False)
        assert oct(socket_mode(path)) == oct(mode), text


# -- user and group --------------------------------------------------------------------------

def ids(status, key):
    """The real, effective, saved and filesystem ids of a /proc status Uid or Gid line."""
    return [int(v) for v in status[key].split()]


def target_account():
    """As root: nobody and its group (nogroup where it exists); otherwise ourselves, since only
    root may switch. Creates nothing on the system."""
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        names = [g.gr_name for g in grp.getgrall()]
        group = grp.getgrnam("nogroup" if "nogroup" in names else "nobody")
    else:
        user = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(os.getegid())
    return user, group


def test_workers_run_as_user_and_group_while_the_master_keeps_its_ids(start_server, tmp_path):
    user, group = target_account()
    sock = tmp_path / "owned.sock"
    # --preload: the interpreter and app are loaded by the master, so the test does not depend
    # on `nobody` being able to read this runner's Python installation (often under /root).
    srv = start_server("basic", "--user", user.pw_name, "--group", group.gr_name, "--preload",
                       "-w", "2", "--bind", "127.0.0.1:0", "--bind", f"unix:{sock}")
    for pid in srv.worker_pids():
        status = proc_status(pid)
        assert ids(status, "Uid") == [user.pw_uid] * 4, (pid, status["Uid"])
        assert ids(status, "Gid") == [group.gr_gid] * 4, (pid, status["Gid"])
        if os.geteuid() == 0:
            assert status["Groups"].split() == [str(group.gr_gid)], "root's groups must be dropped"
    master = proc_status(srv.pid)
    assert ids(master, "Uid") == [os.geteuid()] * 4, "the master keeps its user"
    st = os.stat(sock)
    assert (st.st_uid, st.st_gid) == (user.pw_uid, group.gr_gid), "the socket file is theirs"
    assert srv.get("/hello").body == b"hello world"
    assert srv.get("/hello", listener=str(sock)).body == b"hello world"
    assert srv.stop() == 0


def test_numeric_user_and_group_ids(start_server):
    user, group = target_account()
    srv = start_server("basic", "-u", str(user.pw_uid), "-g", str(group.gr_gid), "--preload")
    status = proc_status(srv.worker_pids()[0])
    assert ids(status, "Uid")[0] == user.pw_uid and ids(status, "Gid")[0] == group.gr_gid


@pytest.mark.parametrize("args, needles", [
    (("--user", "no_such_user_rgunicorn"), ("user", "no_such_user_rgunicorn")),
    (("--group", "no_such_group_rgunicorn"), ("group", "no_such_group_rgunicorn")),
    (("--umask", "0o1000"), ("umask", "0o1000")),
    (("--umask", "eighteen"), ("umask", "eighteen")),
    (("--socket-mode", "900"), ("socket_mode", "900")),
])
def test_bad_process_settings_exit_2(args, needles):
    proc = run_briefly(*args)
    stderr = proc.stderr_text()
    assert proc.returncode == 2, f"rc={proc.returncode}\n{stderr}"
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in:\n{stderr}"
    assert not BOOT_RE.search(stderr)


def test_print_config_shows_the_process_settings():
    proc = run_briefly("--print-config", "-p", "/run/rg/app.pid", "-u", "www-data", "-g", "33",
                       "-m", "022", "--socket-mode", "660", "-D", "--reload")
    assert proc.returncode == 0, proc.stderr_text()
    printed = tomllib.loads(proc.stdout_text())
    assert printed["pidfile"] == "/run/rg/app.pid"
    assert (printed["user"], printed["group"]) == ("www-data", "33")
    assert (printed["umask"], printed["socket_mode"]) == ("0o022", "660")
    assert printed["daemon"] is True and printed["reload"] is True
    defaults = tomllib.loads(run_briefly("--print-config").stdout_text())
    assert "pidfile" not in defaults and "user" not in defaults and "socket_mode" not in defaults
    assert (defaults["umask"], defaults["daemon"], defaults["reload"]) == ("0o000", False, False)


# -- reload ----------------------------------------------------------------------------------

RELOADABLE = textwrap.dedent('''\
    import os

    VERSION = "{version}"


    def application(environ, start_response):
        body = ("%s %d" % (VERSION, os.getpid())).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
''')


def write_app(path, version, mtime_shift=0):
    path.write_text(RELOADABLE.format(version=version))
    stamp = time.time() + mtime_shift
    os.utime(path, (stamp, stamp))  # a clearly newer mtime, whatever the clock granularity


def test_reload_restarts_workers_when_the_app_changes(start_server, tmp_path):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    source = app_dir / "reloadable.py"
    write_app(source, "one")
    srv = start_server("reloadable", "--reload", "--chdir", app_dir)
    version, pid = srv.get("/").body.decode().split()
    assert version == "one"
    mark = srv.log_mark()
    write_app(source, "two", mtime_shift=2)

    def served_version():
        try:
            return srv.get("/", timeout=5).body.decode().split()
        except OSError:
            return None  # workers being replaced
    version_two = wait_until(lambda: (v := served_version()) and v[0] == "two" and v, 20,
                             interval=0.2, message="the new code to be served")
    assert version_two[1] != pid, "a new worker serves the new code"
    new_boot = srv.wait_for(BOOT_RE.pattern, after=mark)[0]
    assert int(new_boot.group(2)) != int(pid)
    wait_until(lambda: int(pid) not in srv.worker_pids(), 20, message="the old worker to exit")


def test_daemon_detaches_and_serves(tmp_path):
    pidfile, errors = tmp_path / "daemon.pid", tmp_path / "error.log"
    launcher = run_to_exit(["lifecycle", "--chdir", APPS, "-b", "127.0.0.1:0", "-D",
                            "--pid", pidfile, "--error-logfile", errors])
    assert launcher.returncode == 0
    daemon = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
                            message="the daemon's pidfile"))
    try:
        assert daemon != launcher.pid
        port = int(wait_until(lambda: re.search(r"Listening at: http://127\.0\.0\.1:(\d+)",
                                                errors.read_text()), 20, message="listening").group(1))
        body = wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read(),
                          20, message="a response from the daemon")
        assert body.startswith(b"v1 ")
        assert os.getsid(daemon) != os.getsid(0), "the daemon left our session"
    finally:
        os.kill(daemon, 15)
        wait_until(lambda: not pidfile.exists(), 20, message="the daemon to stop and remove its pidfile")
