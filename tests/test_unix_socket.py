"""Binding a unix socket: requests over it, alongside TCP, and the socket file removed on exit."""
import os
import stat


def test_unix_socket_serves_and_is_removed_on_exit(start_server, tmp_path):
    path = tmp_path / "rg.sock"
    srv = start_server("basic", "--bind", f"unix:{path}")
    assert srv.unix_path == str(path)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert srv.get("/hello").body == b"hello world"
    env = srv.json("/environ")["environ"]
    assert env["REQUEST_METHOD"] == "GET"
    # A Unix socket peer has no address and no port, as in gunicorn.
    assert env["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in env
    assert srv.stop() == 0
    assert not path.exists()


def test_unix_and_tcp_together(start_server, tmp_path):
    path = tmp_path / "both.sock"
    srv = start_server("basic", "--bind", f"unix:{path}", "--bind", "127.0.0.1:0", "--threads", "2")
    assert len(srv.listeners) == 2
    for listener in srv.listeners:
        assert srv.get("/hello", listener=listener).body == b"hello world"
    conn = srv.connection(listener=str(path))
    try:
        for _ in range(2):  # keep-alive over the unix socket
            conn.request("GET", "/hello")
            assert conn.getresponse().read() == b"hello world"
    finally:
        conn.close()
