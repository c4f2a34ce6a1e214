"""The greenweb Django example served by rgunicorn from its virtualenv: API, uploads, streams, files."""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.server import REPO, VENV

GREENWEB = REPO / "examples" / "greenweb"
PATTERN = bytes(range(256))  # what greenweb's /stream/ and /download/ repeat


def pattern_bytes(size):
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


@pytest.fixture(scope="module")
def greenweb(module_server, greenweb_env):
    return module_server("greenweb.wsgi", "-c", GREENWEB / "gunicorn.conf.py", "--chdir", GREENWEB,
                         "--virtualenv", VENV, "--workers", "2", "--threads", "2",
                         env={**greenweb_env, "GREENWEB_ACCESS_LOG": ""})


def test_the_example_gunicorn_conf_py_is_read_with_its_hooks(greenweb):
    greenweb.wait_for_log(r"greenweb: ready with 2 workers")
    for line in (r"greenweb: starting, master pid %d" % greenweb.pid, r"greenweb: worker \d+ forked"):
        assert greenweb.wait_for_log(line)


def test_index(greenweb):
    resp = greenweb.get("/")
    assert (resp.status, resp.body) == (200, b"greenweb ok")


def test_status_json(greenweb):
    status = greenweb.json("/api/status/")
    assert (status["status"], status["app"]) == ("ok", "greenweb")


def test_plant_list(greenweb):
    plants = greenweb.json("/api/plants/")["plants"]
    assert len(plants) == 20
    assert plants[0]["name"] == "Monstera"
    assert len(greenweb.json("/api/plants/?limit=3")["plants"]) == 3


def test_plant_detail(greenweb):
    first = greenweb.json("/api/plants/")["plants"][0]
    assert greenweb.json(f"/api/plants/{first['id']}/") == first


def test_missing_plant_is_404(greenweb):
    resp = greenweb.get("/api/plants/999999/")
    assert resp.status == 404
    assert "not found" in resp.json()["error"]


def test_bad_query_parameter_is_400(greenweb):
    assert greenweb.get("/api/plants/?limit=many").status == 400


def test_upload_10_mib(greenweb):
    data = os.urandom(10 * 1024 * 1024)
    out = greenweb.json("/upload/", method="POST", body=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert out == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_upload_chunked(greenweb):
    parts = [os.urandom(100_000) for _ in range(7)]
    conn = greenweb.connection()
    try:
        conn.request("POST", "/upload/", body=iter(parts), encode_chunked=True,
                     headers={"Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        out = json.loads(resp.read())
    finally:
        conn.close()
    data = b"".join(parts)
    assert out == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_upload_multipart(greenweb):
    files = [os.urandom(200_000), os.urandom(1000)]
    boundary = "rgunicornboundary42"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"; filename="f{i}.bin"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + f + b"\r\n"
        for i, f in enumerate(files)) + f"--{boundary}--\r\n".encode()
    out = greenweb.json("/upload/", method="POST", body=body,
                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    data = b"".join(files)
    assert out == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "files": 2}


def test_stream(greenweb):
    resp = greenweb.get("/stream/?chunks=50&size=1000")
    assert resp.status == 200
    assert resp.framing == "chunked"
    assert resp.header("X-Greenweb-Bytes") == "50000"
    assert resp.body == pattern_bytes(1000) * 50


def test_download(greenweb):
    size = 3 * 1024 * 1024 + 5
    resp = greenweb.get(f"/download/?size={size}")
    assert resp.status == 200
    assert resp.header("Content-Length") == str(size)
    assert resp.body == pattern_bytes(size)


def test_slow(greenweb):
    assert greenweb.json("/api/slow/?ms=100")["slept_ms"] == 100


def test_concurrent_requests(greenweb):
    paths = ["/", "/api/plants/", "/api/plants/?limit=2", "/stream/?chunks=5&size=100",
             "/download/?size=65536", "/api/slow/?ms=50"] * 4
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda p: greenweb.get(p).status, paths))
    assert statuses == [200] * len(paths)
