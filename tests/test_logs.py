"""Log output: gunicorn's error-log line format, the fixed lines, access log (default and custom format)."""
import re
import signal

import pytest

from helpers.server import wait_until

ERROR_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[(\d+)\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] (.+)$")
ACCESS_TIME = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"


@pytest.fixture(scope="module")
def server(module_server):
    return module_server("basic", "--access-logfile", "-", "--workers", "2")


def access_line(server, request_line):
    """The access-log line (on stdout) of the request with that request line."""
    return server.wait_for(rf'^.*"{re.escape(request_line)}".*$', stream=server.stdout)[0].group(0)


def test_startup_lines(server):
    log, master = server.log_text(), server.pid
    assert re.search(rf"\[{master}\] \[INFO\] Listening at: http://127\.0\.0\.1:{server.port} \({master}\)$", log, re.M)
    assert re.search(rf"\[{master}\] \[INFO\] Using worker: sync$", log, re.M)
    for pid in server.worker_pids():
        assert re.search(rf"\[{pid}\] \[INFO\] Booting worker with pid: {pid}$", log, re.M)


def test_error_log_lines_have_gunicorn_format(server):
    lines = [l for l in server.log_text().splitlines() if l.startswith("[")]
    assert len(lines) >= 4
    for line in lines:
        assert ERROR_LINE.match(line), line


def test_access_log_default_format(server):
    server.get("/hello?x=1", headers={"User-Agent": "log-test/1.0", "Referer": "http://ref.example/"})
    line = access_line(server, "GET /hello?x=1 HTTP/1.1")
    assert re.fullmatch(rf'127\.0\.0\.1 - - {ACCESS_TIME} "GET /hello\?x=1 HTTP/1\.1" 200 11 '
                        r'"http://ref\.example/" "log-test/1\.0"', line), line


def test_access_log_without_referer_and_agent(server):
    server.raw(b"GET /status?code=204 HTTP/1.0\r\n\r\n")
    line = access_line(server, "GET /status?code=204 HTTP/1.0")
    assert re.fullmatch(rf'127\.0\.0\.1 - - {ACCESS_TIME} "GET /status\?code=204 HTTP/1\.0" 204 (?:0|-) "-" "-"',
                        line), line


def test_access_log_custom_format(start_server):
    srv = start_server("basic", "--access-logfile", "-", "--access-logformat", "%(m)s|%(U)s|%(q)s|%(s)s|%(h)s")
    srv.request("POST", "/hello?a=b", body=b"xyz")
    srv.wait_for(r"^POST\|/hello\|a=b\|200\|127\.0\.0\.1$", stream=srv.stdout)


def test_log_files_and_shutdown_line(start_server, tmp_path):
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    srv = start_server("basic", "--access-logfile", access, "--error-logfile", errors)
    assert srv.get("/hello").status == 200
    wait_until(lambda: access.exists() and '"GET /hello HTTP/1.1" 200' in access.read_text(), 10,
               message="the access log line in the file")
    assert srv.stop() == 0
    text = errors.read_text()
    assert f"Listening at: http://127.0.0.1:{srv.port} ({srv.pid})" in text
    assert re.search(rf"\[{srv.pid}\] \[INFO\] Shutting down: Master$", text, re.M)


def test_usr1_reopens_log_files_after_rotation(start_server, tmp_path):
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    srv = start_server("basic", "-w", "2", "--access-logfile", access, "--error-logfile", errors)
    assert srv.get("/hello?before").status == 200
    wait_until(lambda: access.exists() and "/hello?before" in access.read_text(), 10,
               message="the first access line")
    access.rename(tmp_path / "access.log.1")
    errors.rename(tmp_path / "error.log.1")
    srv.send_signal(signal.SIGUSR1)
    wait_until(errors.exists, 10, message="the master reopening (creating) the error log")
    assert "Handling signal: usr1" in (tmp_path / "error.log.1").read_text()

    # Each worker reopens when it gets the signal: poll until each of them wrote into the fresh
    # file (a request served before its worker reopened still lands in the old one). Lines go
    # out in batches, so any earlier request's line may be the one that shows up.
    reopened, served, sent = set(), {}, iter(range(10_000))

    def both_reopened():
        n = next(sent)
        served[n] = srv.json(f"/pid?after-{n}")["pid"]
        text = access.read_text() if access.exists() else ""
        reopened.update(pid for k, pid in served.items() if f"/pid?after-{k} " in text)
        return reopened >= set(srv.worker_pids())
    wait_until(both_reopened, 10, message="both workers writing to a fresh access log")
    for i in range(4):
        assert srv.get(f"/hello?final-{i}").status == 200
    wait_until(lambda: "/hello?final-3" in access.read_text(), 10, message="the last access line")
    assert "/hello?final" not in (tmp_path / "access.log.1").read_text()


def test_app_traceback_goes_to_error_log(server):
    assert server.get("/raise?when=before&token=logged").status == 500
    server.wait_for_log(r"RuntimeError: boom-before-logged")
    assert "Traceback (most recent call last)" in server.log_text()
