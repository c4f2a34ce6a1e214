"""Prometheus /metrics served by the master from shared memory: exact totals over all workers
that survive restarts, valid text (promtool) and OpenMetrics, gauges the master knows, and
prometheus_client's multiprocess mode with no hooks."""
import os
import re
import shutil
import signal
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

from helpers.metrics import samples, total, value
from helpers.server import BOOT_RE, wait_until

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def spread(server, path, count, clients=8):
    """`count` GETs from `clients` threads at once; returns the bodies."""
    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(lambda _: server.get(path), range(count)))
    assert all(r.status == 200 for r in responses), [r.status for r in responses]
    return [r.body for r in responses]


def requests_counted(server):
    return total(server.metrics()[1], "rgunicorn_http_requests_total")


def test_exact_totals_across_a_worker_that_was_killed(start_server):
    server = start_server("basic", "-w", "4", "--metrics-bind", "127.0.0.1:0")
    pids = {int(b.split(b'"pid": ')[1].split(b",")[0]) for b in spread(server, "/pid", 120)}
    wait_until(lambda: requests_counted(server) == 120, 15, message="120 requests counted")
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    server.wait_workers(4, gone=[victim], message="a replacement worker")
    # It logs its boot line before it loads the app; the master counts it serving only after.
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_workers", '{state="serving"}') == 4, 15,
               message="the replacement serving")
    pids |= {int(b.split(b'"pid": ')[1].split(b",")[0]) for b in spread(server, "/pid", 80)}
    assert len(pids) >= 3, f"the load reached only {pids}"
    wait_until(lambda: requests_counted(server) == 200, 15, message="200 requests counted")
    content_type, text = server.metrics()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert total(text, "rgunicorn_http_requests_total") == 200
    assert value(text, "rgunicorn_http_requests_total", '{method="GET",status_class="2xx"}') == 200
    assert value(text, "rgunicorn_http_request_duration_seconds_count") == 200
    assert value(text, "rgunicorn_http_request_duration_seconds_bucket", '{le="+Inf"}') == 200
    assert value(text, "rgunicorn_connections_accepted_total") >= 200
    assert value(text, "rgunicorn_worker_restarts_total", '{reason="crash"}') == 1
    assert value(text, "rgunicorn_workers", '{state="serving"}') == 4
    memory = samples(text, "rgunicorn_worker_memory_bytes")
    assert sorted(memory) == [f'{{worker="{i}"}}' for i in range(4)], memory
    wait_until(lambda: all(v > 0 for v in samples(server.metrics()[1], "rgunicorn_worker_memory_bytes").values()),
               10, message="every worker reporting its memory")
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup installs Debian's prometheus package"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_openmetrics_when_the_scraper_asks(start_server):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    server = start_server("basic", "--metrics-bind", "127.0.0.1:0")
    server.get("/hello")
    wait_until(lambda: requests_counted(server) == 1, 15, message="one request counted")
    content_type, text = server.metrics(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["rgunicorn_http_requests"].type == "counter"
    assert families["rgunicorn_http_request_duration_seconds"].type == "histogram"
    assert sum(s.value for s in families["rgunicorn_http_requests"].samples) == 1


def test_gauges_in_flight_open_connections_and_listen_queue(start_server):
    server = start_server("basic", "-w", "1", "--metrics-bind", "127.0.0.1:0")
    with server.in_flight("queue") as (future, _pid):
        waiting = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(3)]
        def settled():
            text = server.metrics()[1]
            return (value(text, "rgunicorn_http_requests_in_flight") == 1
                    and total(text, "rgunicorn_listen_queue_depth") == 3
                    and value(text, "rgunicorn_connections_open") == 1)
        wait_until(settled, 15, message="one request in flight, three connections queued")
        listener = f'{{listener="http://127.0.0.1:{server.port}"}}'
        assert value(server.metrics()[1], "rgunicorn_listen_queue_limit", listener) >= 3
        server.release("queue")
        assert future.result().status == 200
    for sock in waiting:
        sock.close()
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_http_requests_in_flight") == 0, 15,
               message="nothing in flight")


def test_reloads_and_restarts_by_reason(start_server):
    server = start_server("basic", "-w", "2", "--metrics-bind", "127.0.0.1:0")
    serving = '{state="serving"}'
    # Workers that have not booted are replaced by a reload, not restarted by it.
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_workers", serving) == 2, 20,
               message="two workers serving")
    server.send_signal(signal.SIGHUP)
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_reloads_total", '{outcome="success"}') == 1,
               20, message="the reload counted")
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_worker_restarts_total", '{reason="reload"}') == 2,
               20, message="both old workers counted as restarted by the reload")
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_workers", serving) == 2, 20,
               message="the new workers serving")
    server.send_signal(signal.SIGTTOU)
    wait_until(lambda: value(server.metrics()[1], "rgunicorn_worker_restarts_total", '{reason="scale_down"}') == 1,
               20, message="the scale down counted")
    text = server.metrics()[1]
    assert value(text, "rgunicorn_worker_restarts_total", '{reason="crash"}') == 0
    assert value(text, "rgunicorn_reloads_total", '{outcome="failed"}') == 0


def test_prometheus_client_multiprocess_without_hooks(start_server, tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    (prom_dir / "counter_stale.db").write_bytes(b"left from an earlier run")
    server = start_server("prom", "-w", "2", "--max-requests", "10",
                          env={"PROMETHEUS_MULTIPROC_DIR": str(prom_dir)})
    assert not (prom_dir / "counter_stale.db").exists(), "the master empties the directory at start"
    bodies = [server.get("/").body for _ in range(60)]
    ids = {b.split()[1] for b in bodies}
    assert ids <= {b"0", b"1", b"2", b"3"}, ids
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(prom_dir))
    text = generate_latest(registry).decode()
    assert "app_requests_total 60.0" in text, text
    # The boot lines come through a pipe and may trail the answers.
    server.wait_for(BOOT_RE.pattern, count=6, timeout=10)
    workers = len(server.worker_pids(alive_only=False))
    assert workers >= 6, "max_requests replaced workers"
    names = sorted(p.name for p in prom_dir.iterdir())
    worker_files = [n for n in names if re.fullmatch(r"counter_\d+\.db", n)]
    assert len(worker_files) <= 4, f"{workers} workers wrote {names}"
    # A worker marks itself alive at its first request; the master removes a dead one's mark.
    served = {int(b.split()[0]) for b in bodies}

    def marks_match_the_living():
        alive = len(served & set(server.worker_pids()))
        return f"app_workers_alive {alive:.1f}" in generate_latest(registry).decode()
    wait_until(marks_match_the_living, 15, message="the dead workers' live gauges removed")
