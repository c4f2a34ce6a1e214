"""config/grafana/rgunicorn.json: valid JSON, every query valid PromQL (promtool) and naming only
metrics a real server exports, and the panels the issue asks for."""
import json
import re
import shutil
import subprocess

from helpers.server import REPO

DASHBOARD = REPO / "config" / "grafana" / "rgunicorn.json"
NAME = re.compile(r"\brgunicorn_[a-z_]+\b")


def queries():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return dashboard, exprs


def exported(start_server):
    """The sample names of a real server's /metrics."""
    server = start_server("basic", "--metrics-bind", "127.0.0.1:0")
    server.get("/hello")
    _, text = server.metrics()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}


def test_every_query_names_an_exported_metric(start_server):
    dashboard, exprs = queries()
    assert dashboard["uid"] == "rgunicorn" and dashboard["panels"]
    names = exported(start_server)
    for expr in exprs:
        used = set(NAME.findall(expr))
        assert used, f"no rgunicorn metric in {expr!r}"
        assert used <= names, f"{expr!r} names {used - names}, not exported"


def test_the_panels_the_issue_asks_for():
    dashboard, exprs = queries()
    text = "\n".join(exprs)
    for wanted in ["rate(rgunicorn_http_requests_total", 'status_class="5xx"',
                   "histogram_quantile(0.5, ", "histogram_quantile(0.99, ",
                   "rgunicorn_http_requests_in_flight", "sum by (state) (rgunicorn_workers",
                   "sum by (reason) (increase(rgunicorn_worker_restarts_total",
                   "rgunicorn_listen_queue_depth", "rgunicorn_worker_memory_bytes"]:
        assert wanted in text, wanted
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_query_is_valid_promql(tmp_path):
    _, exprs = queries()
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup installs Debian's prometheus package"
    rules = []
    for i, expr in enumerate(e for e in exprs if not e.startswith("label_values(")):
        expr = expr.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")
        rules.append(f"      - record: rgunicorn:dashboard_{i}\n        expr: {json.dumps(expr)}\n")
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n  - name: dashboard\n    rules:\n" + "".join(rules))
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
