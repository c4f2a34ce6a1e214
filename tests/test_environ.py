"""The WSGI environ (PEP 3333) the server builds: CGI variables, HTTP_* headers, wsgi.* entries."""
import pytest

from helpers.http import parse_responses, recv_until_close, request_bytes


@pytest.fixture(scope="module")
def server(module_server):
    return module_server("basic")


def environ_of(server, path="/environ", method="GET", headers=None, body=None):
    return server.json(path, method=method, headers=headers, body=body)


def raw_environ(server, path="/environ", headers=None, version="HTTP/1.1"):
    """The environ of a request sent byte for byte (for paths and headers http.client rewrites)."""
    resp, _ = server.raw_request("GET", path, headers, version=version)
    assert resp.status == 200, resp
    return resp.json()


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_request_method(server, method):
    assert environ_of(server, method=method)["environ"]["REQUEST_METHOD"] == method


def test_basic_cgi_variables(server):
    env = environ_of(server, "/environ/sub?a=1&b=two")["environ"]
    assert env["PATH_INFO"] == "/environ/sub"
    assert env["QUERY_STRING"] == "a=1&b=two"
    assert env["RAW_URI"] == "/environ/sub?a=1&b=two"
    assert env["SCRIPT_NAME"] == ""
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["SERVER_NAME"]
    assert env["SERVER_PORT"].isdigit()
    assert env["HTTP_HOST"].startswith("127.0.0.1")


def test_query_string_empty_when_absent(server):
    assert environ_of(server, "/environ")["environ"]["QUERY_STRING"] == ""


def test_query_string_stays_encoded(server):
    env = environ_of(server, "/environ?q=a%20b&x=%2F")["environ"]
    assert env["QUERY_STRING"] == "q=a%20b&x=%2F"


def test_path_info_is_percent_decoded_latin1(server):
    out = raw_environ(server, "/environ/caf%C3%A9%20x%2Fy?z=1")["environ"]
    assert out["PATH_INFO"] == "/environ/caf\u00c3\u00a9 x/y"  # UTF-8 bytes seen as latin-1
    assert out["RAW_URI"] == "/environ/caf%C3%A9%20x%2Fy?z=1"


def test_remote_port_is_the_client_port(server):
    with server.raw_socket() as sock:
        sock.sendall(request_bytes("GET", "/environ", {"Connection": "close"}))
        client_port = sock.getsockname()[1]
        data, _ = recv_until_close(sock, 10)
    (resp,) = parse_responses(data)
    assert resp.json()["environ"]["REMOTE_PORT"] == str(client_port)


def test_server_protocol_http10(server):
    env = raw_environ(server, version="HTTP/1.0")["environ"]
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    # No Host field, so no HTTP_HOST (the app falls back to SERVER_NAME, per PEP 3333).
    assert "HTTP_HOST" not in env


def test_content_length_only_when_sent(server):
    assert "CONTENT_LENGTH" not in environ_of(server)["environ"]
    env = environ_of(server, method="POST", body=b"hello", headers={"Content-Type": "text/x-test"})["environ"]
    assert env["CONTENT_LENGTH"] == "5"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert "HTTP_CONTENT_LENGTH" not in env and "HTTP_CONTENT_TYPE" not in env


def test_http_headers(server):
    env = environ_of(server, headers={"X-Custom-Thing": "v1", "User-Agent": "env-test/1", "accept": "*/*"})
    env = env["environ"]
    assert env["HTTP_X_CUSTOM_THING"] == "v1"
    assert env["HTTP_USER_AGENT"] == "env-test/1"
    assert env["HTTP_ACCEPT"] == "*/*"


def test_header_values_follow_each_request(server):
    # The worker remembers each header's last value; a new, longer or non-ASCII one must win.
    values = ["a", "a", "b", "b" * 300, "b" * 300, "caf\u00e9", "a"]
    for value in values:
        data = (b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Seen: "
                + value.encode("latin-1") + b"\r\n\r\n")
        (resp,) = parse_responses(server.raw(data))
        assert resp.json()["environ"]["HTTP_X_SEEN"] == value


def test_header_with_underscore_is_dropped(server):
    env = raw_environ(server, headers={"X_Under": "evil", "X-Under": "good"})["environ"]
    assert env["HTTP_X_UNDER"] == "good"
    assert not any("evil" in v for v in env.values() if isinstance(v, str))


def test_repeated_headers_are_joined_with_comma(server):
    data = (b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"X-Multi: a\r\nX-Multi: b\r\n\r\n")
    (resp,) = parse_responses(server.raw(data))
    assert resp.json()["environ"]["HTTP_X_MULTI"] == "a,b"


def test_wsgi_entries(server):
    out = environ_of(server)
    env = out["environ"]
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert out["caps"] == {"wsgi.input": ["read", "readline", "readlines", "__iter__"],
                           "wsgi.errors": ["write", "writelines", "flush"], "wsgi.file_wrapper": True}
    assert out["environ_is_dict"] is True


def test_keys_and_cgi_values_are_native_strings(server):
    out = environ_of(server, "/environ?x=1", method="POST", body=b"abc", headers={"X-A": "b"})
    assert out["nonstr_keys"] == []
    assert out["nonstr_values"] == []


def test_forwarded_proto_from_trusted_peer(server):
    env = environ_of(server, headers={"X-Forwarded-Proto": "https"})["environ"]
    assert env["wsgi.url_scheme"] == "https"


def test_host_header_is_passed_through(server):
    env = environ_of(server, headers={"Host": "example.test:8081"})["environ"]
    assert env["HTTP_HOST"] == "example.test:8081"
    assert env["SERVER_NAME"] and env["SERVER_PORT"].isdigit()


def test_validator_accepts_environ_get(server):
    resp = server.get("/validated")
    assert (resp.status, resp.body) == (200, b"validated:")


def test_validator_accepts_environ_post(server):
    resp = server.request("POST", "/validated?q=1", body=b"payload", headers={"Content-Type": "text/plain"})
    assert (resp.status, resp.body) == (200, b"validated:payload")


def test_validator_found_no_unclosed_iterators(server):
    server.get("/validated")
    assert "without being closed" not in server.log_text()


def test_wsgi_errors_is_writable(server):
    assert server.get("/errors?token=env").status == 200


def test_multiprocess_true_with_two_workers(start_server):
    srv = start_server("basic", "--workers", "2")
    env = srv.json("/environ")["environ"]
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.multithread"] is False


def test_script_name_from_server_environment(start_server):
    srv = start_server("basic", env={"SCRIPT_NAME": "/prefix"})
    env = srv.json("/prefix/environ/x")["environ"]
    assert env["SCRIPT_NAME"] == "/prefix"
    assert env["PATH_INFO"] == "/environ/x"


def test_server_port_is_the_listener_the_request_came_in_on(start_server):
    # One listener's SERVER_NAME/SERVER_PORT are preset per worker; with two, each request
    # must still name its own.
    single = start_server("basic")
    ((host, port),) = single.listeners
    env = single.json("/environ")["environ"]
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (host, str(port))
    double = start_server("basic", "--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0")
    assert len(double.listeners) == 2
    for listener in double.listeners * 2:
        env = double.json("/environ", listener=listener)["environ"]
        assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(listener[1]))
