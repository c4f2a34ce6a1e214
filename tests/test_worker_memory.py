"""max_worker_memory: a worker whose unshared memory passes it finishes its request, retires and
is replaced, counted as a restart for reason memory; one under it is left alone."""
from helpers.server import ctl, wait_until


def show(socket, what):
    _, answer = ctl(socket, "show", what, timeout=30)
    return answer[what]


def stats(socket):
    return show(socket, "stats")


def test_a_worker_past_the_limit_is_replaced_after_its_request(start_server, tmp_path):
    socket = tmp_path / "ctl"
    server = start_server("hog", "-w", "1", "--max-worker-memory", "48", "--control-socket", socket)
    [worker] = server.worker_pids()
    assert server.get("/hog?mb=8").status == 200
    response = server.get("/hog?mb=80")
    assert response.status == 200 and int(response.body) == worker, "its request is answered"
    server.wait_for_log(rf"Worker \(pid:{worker}\) retires after its current requests: its unshared "
                        r"memory passed max_worker_memory", timeout=15)
    server.wait_workers(1, gone=[worker], timeout=15, message="a replacement worker")
    assert int(server.get("/").body) != worker
    wait_until(lambda: stats(socket)["worker_restarts"]["memory"] == 1, 15,
               message="the restart counted under memory")
    assert stats(socket)["worker_restarts"]["crash"] == 0


def test_a_worker_under_the_limit_stays(start_server, tmp_path):
    socket = tmp_path / "ctl"
    server = start_server("hog", "-w", "1", "--max-worker-memory", "200", "--control-socket", socket)
    [worker] = server.worker_pids()
    assert server.get("/hog?mb=20").status == 200
    wait_until(lambda: show(socket, "workers")[0]["memory_bytes"] > 20 * 2**20, 15,
               message="the worker measuring its 20 MiB")
    assert server.worker_pids() == [worker]
    assert stats(socket)["worker_restarts"]["memory"] == 0
