"""JSON logs for Loki: one object per request in the access log, one per event in the error log,
valid whatever bytes came off the wire; the WORKER TIMEOUT record carries its traceback."""
import json
import os
import re
import signal
import socket
import time
from datetime import datetime, timezone

from helpers.http import request_bytes
from helpers.server import REPO, proc_start_time, wait_until

ACCESS_KEYS = {"ts", "remote_ip", "method", "path", "query", "protocol", "status", "size",
               "duration_ms", "referer", "user_agent", "request_id", "pid", "worker"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(text):
    """Every complete line of `text`, each parsed (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def start_json_logging(start_server, app, *args, workers=1):
    """A server whose error log is JSON: ready once `workers` boot records are there."""
    server = start_server(app, "--log-format", "json", *args, workers=0)
    server.wait_for(r'"msg":"Booting worker with pid: \d+"', count=workers)
    return server


def json_worker_pids(server):
    """The live workers, from the boot records of the JSON error log."""
    pids = [int(m) for m in re.findall(r'"msg":"Booting worker with pid: (\d+)"', server.stderr_text())]
    return [pid for pid in pids if proc_start_time(pid) is not None]


def access_records(server, count=1):
    wait_until(lambda: len(json_lines(server.stdout_text())) >= count, 15, message="access lines")
    return json_lines(server.stdout_text())


def test_access_log_json_round_trips_hostile_bytes(start_server):
    server = start_server("basic", "--access-logfile", "-", "--access-log-format", "json")
    # What a strict parser lets through: quotes, backslashes, tabs, UTF-8 and bytes that are not.
    agent = b'quote" back\\slash tab\t \xc3\xa9 \xff\xfe bad \\u0000 \\"'
    data = (b"GET /hello?q=%22x%22&a=b HTTP/1.1\r\nHost: x\r\nUser-Agent: " + agent +
            b"\r\nReferer: http://r/\xe2\x82\r\nX-Request-ID: req-42\r\nConnection: close\r\n\r\n")
    assert b" 200 " in server.raw(data)[:20]
    [record] = access_records(server)
    assert set(record) == ACCESS_KEYS
    assert TS.match(record["ts"]), record["ts"]
    assert record["user_agent"] == agent.decode("utf-8", "replace")
    assert record["referer"] == "http://r/\ufffd"
    assert record["request_id"] == "req-42"
    assert (record["method"], record["path"], record["query"]) == ("GET", "/hello", "q=%22x%22&a=b")
    assert (record["protocol"], record["status"], record["size"]) == ("HTTP/1.1", 200, 11)
    assert record["remote_ip"] == "127.0.0.1"
    assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
    [worker] = server.worker_pids()
    assert record["pid"] == worker
    assert record["worker"] == 0


def test_access_log_json_times_are_when_responses_ended(start_server):
    """`ts` is when each response ended, to the millisecond it is written with: the worker reads
    the wall clock for its first line, then reckons from its monotonic clock and the offset."""
    server = start_server("basic", "--access-logfile", "-", "--access-log-format", "json")
    windows = []
    for _ in range(5):
        sent = time.time()
        assert b" 200 " in server.raw(b"GET /hello HTTP/1.0\r\n\r\n")[:20]
        windows.append((sent, time.time()))
    records = access_records(server, count=5)
    for (sent, answered), record in zip(windows, records):
        ended = datetime.strptime(record["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        ended = ended.replace(tzinfo=timezone.utc).timestamp()
        # A millisecond either side: `ts` is cut to the millisecond, and the reckoning may be off
        # by what NTP slewed the clock since the offset was read (50 µs at most).
        assert sent - 0.001 <= ended <= answered + 0.001, (sent, record["ts"], answered)


def test_access_log_json_absent_headers_are_null(start_server):
    server = start_server("basic", "--access-logfile", "-", "--access-log-format", "json")
    server.raw(b"GET /status?code=204 HTTP/1.0\r\n\r\n")
    [record] = access_records(server)
    assert record["referer"] is None and record["user_agent"] is None and record["request_id"] is None
    assert record["status"] == 204 and record["protocol"] == "HTTP/1.0"


def test_error_log_json_lines(start_server):
    server = start_json_logging(start_server, "basic", "-w", "2", workers=2)
    server.get("/raise?when=before&token=json1")
    server.wait_for(r'"msg":"Error handling request /raise')
    records = json_lines(server.stderr_text())
    assert all({"ts", "level", "msg", "pid"} <= set(r) for r in records), records
    assert all(TS.match(r["ts"]) for r in records)
    listening = [r for r in records if r["msg"].startswith("Listening at: http://127.0.0.1:")]
    assert listening and listening[0]["pid"] == server.pid and listening[0]["level"] == "info"
    [failure] = [r for r in records if r["msg"].startswith("Error handling request")]
    assert failure["level"] == "error"
    assert "RuntimeError: boom-before-json1" in failure["traceback"]
    assert failure["traceback"].startswith("Traceback (most recent call last)")


def test_worker_timeout_record_carries_its_traceback(start_server):
    server = start_json_logging(start_server, "lifecycle", "-w", "1", "-t", "2")
    [worker] = json_worker_pids(server)
    sock = socket.create_connection((server.host, server.port), timeout=20)
    sock.sendall(request_bytes("GET", "/spin?x=1"))
    server.wait_for(r'"msg":"WORKER TIMEOUT', timeout=20)
    def replaced():
        pids = json_worker_pids(server)  # read once: two reads can straddle the old one's death
        return pids and worker not in pids
    wait_until(replaced, 20, message="a replacement worker")
    sock.close()
    records = json_lines(server.stderr_text())
    [timeout] = [r for r in records if r["msg"].startswith("WORKER TIMEOUT")]
    assert timeout["worker_pid"] == worker and timeout["pid"] == server.pid
    assert timeout["request"] == "GET /spin?x=1"
    assert timeout["seconds"] >= 2
    assert re.search(r'File ".*lifecycle\.py", line \d+ in application', timeout["traceback"]), timeout
    assert not any("lifecycle.py" in r["msg"] for r in records), "the traceback is a field, not lines"


def _ids_of_both_workers(server, tag):
    """Occupies both sync workers at once; returns {pid: worker id} from their access records."""
    mark = len(server.stdout_text())
    with server.in_flight(f"{tag}a") as (first, pid_a), server.in_flight(f"{tag}b") as (second, pid_b):
        assert pid_a != pid_b
        server.release(f"{tag}a")
        server.release(f"{tag}b")
        assert first.result().status == second.result().status == 200
    wait_until(lambda: len(json_lines(server.stdout_text()[mark:])) >= 2, 15, message="two records")
    return {r["pid"]: r["worker"] for r in json_lines(server.stdout_text()[mark:])}


def test_a_replacement_worker_takes_the_id_of_the_one_it_replaces(start_server):
    server = start_server("basic", "-w", "2", "--access-logfile", "-", "--access-log-format", "json")
    ids = _ids_of_both_workers(server, "ids1")
    assert sorted(ids.values()) == [0, 1]
    victim = min(ids)
    assert server.json(f"/osenv?name=RGUNICORN_WORKER_ID")["value"] in ("0", "1")
    os.kill(victim, signal.SIGKILL)
    server.wait_workers(2, gone=[victim], message="a replacement worker")
    again = _ids_of_both_workers(server, "ids2")
    [replacement] = set(again) - set(ids)
    assert again[replacement] == ids[victim]


def test_the_loki_pipeline_reads_fields_the_logs_have():
    """config/loki/rgunicorn.alloy extracts only keys that the JSON lines above carry."""
    alloy = (REPO / "config" / "loki" / "rgunicorn.alloy").read_text()
    error_keys = {"ts", "level", "msg", "pid", "worker_pid", "request", "thread", "seconds", "traceback"}
    extracted = set()
    for block in re.findall(r"expressions = \{([^}]*)\}", alloy):
        extracted |= set(re.findall(r"(\w+) = \"\"", block))
    assert {"ts", "method", "status", "level", "request_id"} <= extracted
    assert extracted <= ACCESS_KEYS | error_keys, extracted - ACCESS_KEYS - error_keys
    assert '/var/log/rgunicorn/access.log' in alloy and '/var/log/rgunicorn/error.log' in alloy


def test_access_lines_go_out_in_batches_and_none_is_lost_at_stop(start_server, tmp_path):
    access = tmp_path / "access.log"
    server = start_server("basic", "-w", "2", "--access-logfile", access, "--access-log-format", "json")
    for i in range(60):
        assert server.get(f"/hello?n={i}").status == 200
    wait_until(lambda: access.exists() and len(access.read_text().splitlines()) == 60, 10,
               message="60 lines within the batch interval, with no further request")
    for i in range(60, 90):
        assert server.get(f"/hello?n={i}").status == 200
    assert server.stop() == 0
    queries = [json.loads(line)["query"] for line in access.read_text().splitlines()]
    assert sorted(queries, key=lambda q: int(q[2:])) == [f"n={i}" for i in range(90)]
