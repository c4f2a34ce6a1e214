"""The HTTP/1.1 front door (issues 4 and 13) through the real binary, with raw bytes.

Each rule the gunicorn corpus (test_conformance.py) does not already pin down gets a request
written out byte for byte: refused requests get their status, the connection is closed and the
app (tests/apps/echo_request.py, which records every call) never runs; accepted ones show the
app exactly what was sent. Also limits, response validation, Expect, proxies, and slow clients.

Where rgunicorn differs from gunicorn 27 on purpose:
- HTTP/1.1 without Host, or with a Host that is not uri-host[:port], is 400 (RFC 9112 section
  3.2); --permit-missing-host serves the former (the corpus cases without Host run with it).
- Transfer-Encoding must be exactly one chunked: other codings before it are 501, a field that
  does not end in one chunked (or is malformed) is 400.
- An absolute-form target's authority replaces Host in HTTP_HOST (RFC 9112 section 3.2.2, where
  gunicorn keeps the Host field); the target stays in RAW_URI and gives PATH_INFO and QUERY_STRING.
"""
import socket
import time

import pytest

from helpers.http import open_raw, parse_responses, read_responses, recv_until_close

LIMITS = ("--limit-request-line", "200", "--limit-request-fields", "20",
          "--limit-request-field_size", "300", "--limit-request-body", "1000")
SLOW_CLIENTS = 500


@pytest.fixture(scope="module")
def server(module_server):
    """gthread (keep-alive), one worker so that timings are the worker's own, small limits."""
    return module_server("echo_request", "-w", "1", "--threads", "4", "--keep-alive", "5", *LIMITS)


def hits(server):
    return server.records("hits")


def refused(server, data, status):
    """Sends `data`; the answer must be `status`, the connection closed, the app not called."""
    before = len(hits(server))
    raw = server.raw(data, timeout=10, expect_close=True)
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [status], raw[:300]
    assert responses[0].header("Connection") == "close"
    assert hits(server)[before:] == [], "the app ran for a request it must never see"
    return responses[0]


def echoed(server, data, count=1):
    """Sends `data` on one connection; returns what the app saw for each of `count` requests."""
    with open_raw(server.address(), 15) as sock:
        sock.sendall(data)
        responses, _ = read_responses(sock, count, timeout=15)
    assert [r.status for r in responses] == [200] * count, [r.body[:200] for r in responses]
    seen = [r.json() for r in responses]
    return seen if count > 1 else seen[0]


def get(path, *fields, method=b"GET", body=b"", version=b"HTTP/1.1"):
    """A request with the given raw field lines (bytes, no CRLF), Host first."""
    lines = [method + b" " + path + b" " + version, b"Host: example.com", *fields]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- item 2: framing and syntax -------------------------------------------------------------------

CHUNKED = b"Transfer-Encoding: chunked"
BODY5 = b"5\r\nhello\r\n0\r\n\r\n"

FRAMING_ERRORS = {
    "cl-and-te": (get(b"/", b"Content-Length: 5", CHUNKED, method=b"POST", body=BODY5), 400),
    "te-and-cl": (get(b"/", CHUNKED, b"Content-Length: 5", method=b"POST", body=BODY5), 400),
    "cl-conflicting": (get(b"/", b"Content-Length: 5", b"Content-Length: 6", method=b"POST",
                           body=b"hello!"), 400),
    "cl-repeated": (get(b"/", b"Content-Length: 5", b"Content-Length: 5", method=b"POST",
                        body=b"hello"), 400),
    "cl-list": (get(b"/", b"Content-Length: 5, 5", method=b"POST", body=b"hello"), 400),
    "cl-plus-sign": (get(b"/", b"Content-Length: +5", method=b"POST", body=b"hello"), 400),
    "cl-hex": (get(b"/", b"Content-Length: 0x5", method=b"POST", body=b"hello"), 400),
    "cl-inner-space": (get(b"/", b"Content-Length: 5 5", method=b"POST", body=b"hello"), 400),
    "cl-empty": (get(b"/", b"Content-Length:", method=b"POST"), 400),
    "cl-overflow": (get(b"/", b"Content-Length: 99999999999999999999999", method=b"POST"), 400),
    "te-in-http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + BODY5, 400),
    # RFC 9112 section 6.3: a body whose last coding is not chunked cannot be framed, so 400.
    "te-unknown": (get(b"/", b"Transfer-Encoding: foo", method=b"POST", body=BODY5), 400),
    "te-gzip-chunked": (get(b"/", b"Transfer-Encoding: gzip, chunked", method=b"POST",
                            body=BODY5), 501),
    "te-gzip-then-chunked-two-fields": (get(b"/", b"Transfer-Encoding: gzip", CHUNKED,
                                            method=b"POST", body=BODY5), 501),
    "te-identity-chunked": (get(b"/", b"Transfer-Encoding: identity, chunked", method=b"POST",
                                body=BODY5), 501),
    "te-empty": (get(b"/", b"Transfer-Encoding:", method=b"POST", body=BODY5), 400),
    "te-chunked-with-parameter": (get(b"/", b"Transfer-Encoding: chunked;x=1", method=b"POST",
                                      body=BODY5), 400),
    "te-malformed-coding": (get(b"/", b"Transfer-Encoding: gzip;, chunked", method=b"POST",
                                body=BODY5), 400),
    "te-quoted": (get(b"/", b'Transfer-Encoding: "chunked"', method=b"POST", body=BODY5), 400),
    "te-unknown-then-chunked": (get(b"/", b"Transfer-Encoding: foo, chunked", method=b"POST",
                                    body=BODY5), 501),
    "te-chunked-not-last": (get(b"/", b"Transfer-Encoding: chunked, gzip", method=b"POST",
                                body=BODY5), 400),
    "te-identity-alone": (get(b"/", b"Transfer-Encoding: identity", method=b"POST"), 400),
    "te-chunked-twice": (get(b"/", b"Transfer-Encoding: chunked, chunked", method=b"POST",
                             body=BODY5), 400),
    "te-chunked-two-fields": (get(b"/", CHUNKED, CHUNKED, method=b"POST", body=BODY5), 400),
    "chunk-size-0x": (get(b"/", CHUNKED, method=b"POST", body=b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-overflow": (get(b"/", CHUNKED, method=b"POST",
                                body=b"10000000000000000\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-size-empty": (get(b"/", CHUNKED, method=b"POST", body=b"\r\nhello\r\n0\r\n\r\n"), 400),
    "chunk-ext-no-name": (get(b"/", CHUNKED, method=b"POST", body=b"5;=x\r\nhello\r\n0\r\n\r\n"),
                          400),
    "chunk-ext-bad-quote": (get(b"/", CHUNKED, method=b"POST",
                                body=b'5;a="x\r\nhello\r\n0\r\n\r\n'), 400),
    "chunk-data-too-long": (get(b"/", CHUNKED, method=b"POST", body=b"5\r\nhello!!\r\n0\r\n\r\n"),
                            400),
    "chunk-bare-lf-after-data": (get(b"/", CHUNKED, method=b"POST",
                                     body=b"5\r\nhello\n0\r\n\r\n"), 400),
    "chunk-bare-lf-size-line": (get(b"/", CHUNKED, method=b"POST", body=b"5\nhello\r\n0\r\n\r\n"),
                                400),
    "trailer-host": (get(b"/", CHUNKED, method=b"POST", body=b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n"),
                     400),
    "trailer-obs-fold": (get(b"/", CHUNKED, method=b"POST",
                             body=b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"), 400),
}

SYNTAX_ERRORS = {
    "bare-lf-request-line": b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    "bare-lf-between-fields": b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    "bare-lf-ending-head": b"GET / HTTP/1.1\r\nHost: a\r\n\n",
    "bare-lf-only": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr-in-value": get(b"/", b"X: a\rb"),
    "bare-cr-ending-field": get(b"/", b"X: a\rY: b"),
    "bare-cr-in-request-line": b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
    "obs-fold-space": get(b"/", b"X: a", b" b"),
    "obs-fold-tab": get(b"/", b"X: a", b"\tb"),
    "whitespace-before-first-field": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "tab-before-colon": get(b"/", b"X\t: a"),
    "soh-in-value": get(b"/", b"X: a\x01b"),
    "esc-in-value": get(b"/", b"X: a\x1bb"),
    "del-in-value": get(b"/", b"X: a\x7fb"),
    "nul-in-value": get(b"/", b"X: a\x00b"),
    "ctl-in-name": get(b"/", b"X\x01Y: a"),
    "non-ascii-in-name": get(b"/", b"X\xe9: a"),
    "empty-name": get(b"/", b": a"),
    "no-colon": get(b"/", b"X-No-Colon"),
    "duplicate-host": get(b"/", b"Host: other.example"),
    "duplicate-host-same-value": get(b"/", b"Host: example.com"),
    "duplicate-content-type": get(b"/", b"Content-Type: a/b", b"Content-Type: c/d"),
    "asterisk-form-not-options": b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    "authority-form-not-connect": b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
    "relative-target": b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "lower-case-method": b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    "http-2-version": b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "lower-case-version": b"GET / http/1.1\r\nHost: a\r\n\r\n",
    "two-spaces-in-request-line": b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    "proxy-line-when-not-enabled": b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n" + get(b"/"),
}


@pytest.mark.parametrize("name", sorted(FRAMING_ERRORS))
def test_framing_error_is_refused(server, name):
    data, status = FRAMING_ERRORS[name]
    refused(server, data, status)


@pytest.mark.parametrize("name", sorted(SYNTAX_ERRORS))
def test_syntax_error_is_refused(server, name):
    refused(server, SYNTAX_ERRORS[name], 400)


@pytest.mark.parametrize("target,status", [(b"example.com:443", 501), (b"[::1]:443", 501),
                                           (b"/tunnel", 400)])
def test_connect_is_refused(server, target, status):
    """rgunicorn never tunnels: a proxy that saw a 2xx would relay raw bytes as requests.
    CONNECT without an authority-form target is malformed before it is unsupported."""
    refused(server, b"CONNECT " + target + b" HTTP/1.1\r\nHost: example.com:443\r\n\r\n", status)


def test_worker_still_serves_after_refusals(server):
    assert echoed(server, get(b"/after", b"Connection: close"))["PATH_INFO"] == "/after"


def test_absolute_form_target_takes_its_host_from_the_uri(server):
    seen = echoed(server, get(b"http://origin.example:8080/a%20b?x=1", b"Connection: close"))
    assert seen["RAW_URI"] == "http://origin.example:8080/a%20b?x=1"
    assert (seen["PATH_INFO"], seen["QUERY_STRING"]) == ("/a b", "x=1")
    # RFC 9112 section 3.2.2: the target's authority wins over the Host field (example.com).
    assert seen["headers"]["HTTP_HOST"] == "origin.example:8080"


def test_options_asterisk_reaches_the_app(server):
    seen = echoed(server, b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert (seen["REQUEST_METHOD"], seen["RAW_URI"]) == ("OPTIONS", "*")


def test_underscore_names_are_dropped(server):
    seen = echoed(server, get(b"/", b"X_Forwarded_For: 6.6.6.6", b"X-Forwarded-For: 1.2.3.4",
                              b"Content_Length: 99", b"X_Only_Underscore: 1", b"Connection: close"))
    headers = seen["headers"]
    assert headers["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    assert "HTTP_X_ONLY_UNDERSCORE" not in headers
    assert "CONTENT_LENGTH" not in headers and "HTTP_CONTENT_LENGTH" not in headers


def test_underscore_name_alone_never_poses_as_dash_name(server):
    seen = echoed(server, get(b"/", b"X_Forwarded_For: 6.6.6.6", b"Connection: close"))
    assert "HTTP_X_FORWARDED_FOR" not in seen["headers"]


def test_obs_text_reaches_the_app_as_latin1_byte_for_byte(server):
    value = bytes(range(0x80, 0x100)) + b" mid\tdle caf\xe9"
    seen = echoed(server, get(b"/", b"X-Latin: " + value, b"Connection: close"))
    assert seen["headers"]["HTTP_X_LATIN"].encode("latin-1") == value


def test_values_are_trimmed_of_ows_only(server):
    seen = echoed(server, get(b"/", b"X-Pad: \t a  b \t", b"Connection: close"))
    assert seen["headers"]["HTTP_X_PAD"] == "a  b"


def test_trailers_never_reach_the_environ(server):
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\nVary: *\r\n\r\n"
    seen = echoed(server, get(b"/", CHUNKED, b"Connection: close", method=b"POST", body=body))
    assert seen["body"] == "hello world"
    assert "HTTP_X_TRAILER" not in seen["headers"] and "HTTP_VARY" not in seen["headers"]


def test_pipelined_requests_after_a_chunked_body(server):
    first = get(b"/one", CHUNKED, method=b"POST", body=b"3;ext=1\r\nabc\r\n0\r\n\r\n")
    second = get(b"/two", b"Content-Length: 2", method=b"POST", body=b"hi")
    third = get(b"/three", b"Connection: close")
    seen = echoed(server, first + second + third, count=3)
    assert [(s["PATH_INFO"], s["body"]) for s in seen] == [("/one", "abc"), ("/two", "hi"),
                                                          ("/three", "")]


# --- item 3: limits ---------------------------------------------------------------------------------

def request_line_of(length):
    path = b"/" + b"a" * (length - len(b"GET / HTTP/1.1"))
    line = b"GET " + path + b" HTTP/1.1"
    assert len(line) == length
    return line


def test_request_line_at_the_limit_passes(server):
    seen = echoed(server, request_line_of(200) + b"\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert len(seen["RAW_URI"]) == 200 - len("GET  HTTP/1.1")


def test_request_line_over_the_limit_is_414(server):
    refused(server, request_line_of(201) + b"\r\nHost: a\r\n\r\n", 414)


def fields(count):
    return [b"Connection: close"] + [b"X-F%d: v" % i for i in range(count - 2)]


def test_fields_at_the_limit_pass(server):
    assert echoed(server, get(b"/", *fields(20)))["headers"]["HTTP_X_F17"] == "v"


def test_fields_over_the_limit_is_431(server):
    refused(server, get(b"/", *fields(21)), 431)


def test_dropped_underscore_fields_still_count(server):
    refused(server, get(b"/", *fields(20), b"X_Dropped: 1"), 431)


def field_of(size):
    """A field line of `size` bytes counting its CRLF, as gunicorn does."""
    line = b"X-Big: " + b"v" * (size - 2 - len(b"X-Big: "))
    assert len(line) + 2 == size
    return line


def test_field_at_the_size_limit_passes(server):
    assert echoed(server, get(b"/", field_of(300), b"Connection: close"))["headers"]["HTTP_X_BIG"]


def test_field_over_the_size_limit_is_431(server):
    refused(server, get(b"/", field_of(301)), 431)


def test_body_at_the_limit_passes(server):
    body = b"b" * 1000
    seen = echoed(server, get(b"/", b"Content-Length: 1000", b"Connection: close", method=b"POST",
                              body=body))
    assert seen["body"] == body.decode()


def test_declared_body_over_the_limit_is_413(server):
    refused(server, get(b"/", b"Content-Length: 1001", method=b"POST", body=b"b" * 1001), 413)


def test_chunked_body_over_the_limit_is_413(server):
    body = b"3e9\r\n" + b"b" * 1001 + b"\r\n0\r\n\r\n"
    refused(server, get(b"/", CHUNKED, method=b"POST", body=body), 413)


def test_limit_request_body_defaults_to_unlimited(start_server):
    plain = start_server("echo_request")
    body = b"z" * 300_000
    seen = echoed(plain, get(b"/", b"Content-Length: %d" % len(body), b"Connection: close",
                             method=b"POST", body=body))
    assert len(seen["body"]) == len(body)


# --- item 5: responses ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cr", "lf", "crlf", "nul", "nonlatin1", "name-space", "name-colon",
                                  "name-crlf", "status-crlf", "status-nonlatin1"])
def test_invalid_response_header_is_500(server, kind):
    mark = server.log_mark()
    raw = server.raw(get(b"/__rgt/badheader?kind=" + kind.encode()), timeout=10)
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [500], raw[:300]
    assert b"injected" not in raw and b"should never be sent" not in raw
    assert not responses[0].header_all("X-Bad")
    server.wait_for_log(r"Error handling request /__rgt/badheader", after=mark, timeout=5)


def test_body_shorter_than_content_length_closes_the_connection(server):
    with open_raw(server.address(), 10) as sock:
        sock.sendall(get(b"/__rgt/length?declared=10&actual=4"))
        raw, closed = recv_until_close(sock, 10)
    assert closed, "a short body must end with a closed connection, or the client waits forever"
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 10" in head and body == b"xxxx"


def test_body_longer_than_content_length_is_cut(server):
    data = get(b"/__rgt/length?declared=4&actual=10") + get(b"/next", b"Connection: close")
    with open_raw(server.address(), 10) as sock:
        sock.sendall(data)
        responses, _ = read_responses(sock, 2, timeout=10)
    assert responses[0].body == b"xxxx"
    assert responses[1].json()["PATH_INFO"] == "/next", "the cut bytes must not leak into the next"


@pytest.mark.parametrize("method,code", [(b"HEAD", 200), (b"GET", 204), (b"GET", 304),
                                         (b"HEAD", 404)])
def test_bodiless_responses_carry_no_body(server, method, code):
    first = get(b"/__rgt/status?code=%d" % code, method=method)
    data = first + get(b"/next", b"Connection: close")
    with open_raw(server.address(), 10) as sock:
        sock.sendall(data)
        responses, _ = read_responses(sock, 2, methods=(method.decode(), "GET"), timeout=10)
    assert responses[0].status == code
    if code in (204, 304):
        assert not responses[0].header_all("Content-Length")
        assert not responses[0].header_all("Transfer-Encoding")
    assert responses[1].status == 200 and responses[1].json()["PATH_INFO"] == "/next"


@pytest.mark.parametrize("name,value", [("Transfer-Encoding", "chunked"), ("Keep-Alive", "timeout=99"),
                                        ("Upgrade", "h2c"), ("Trailers", "X"), ("TE", "trailers"),
                                        ("Proxy-Authenticate", "Basic")])
def test_hop_by_hop_headers_from_the_app_are_dropped(server, name, value):
    data = get(b"/__rgt/hop?name=%s&value=%s" % (name.encode(), value.encode()))
    data += get(b"/next", b"Connection: close")
    with open_raw(server.address(), 10) as sock:
        sock.sendall(data)
        responses, _ = read_responses(sock, 2, timeout=10)
    assert responses[0].body == b"ok" and not responses[0].header_all(name)
    assert responses[1].json()["PATH_INFO"] == "/next"


def test_connection_close_from_the_app_closes(server):
    with open_raw(server.address(), 10) as sock:
        sock.sendall(get(b"/__rgt/hop?name=Connection&value=close"))
        raw, closed = recv_until_close(sock, 10)
    assert closed and parse_responses(raw)[0].header("Connection") == "close"


def test_expect_100_continue_when_the_app_reads(server):
    with open_raw(server.address(), 10) as sock:
        sock.sendall(get(b"/", b"Content-Length: 5", b"Expect: 100-continue", b"Connection: close",
                         method=b"POST"))
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        raw, _ = recv_until_close(sock, 10)
    assert parse_responses(raw)[0].json()["body"] == "hello"


def test_no_100_continue_when_the_app_does_not_read(server):
    before = len(hits(server))
    with open_raw(server.address(), 10) as sock:
        sock.sendall(get(b"/__rgt/noread", b"Content-Length: 5", b"Expect: 100-continue",
                         method=b"POST"))
        raw, closed = recv_until_close(sock, 10)
    assert raw.startswith(b"HTTP/1.1 200 ") and b"100 Continue" not in raw
    # The body never came, so the connection cannot carry another request.
    assert closed
    assert len(hits(server)) == before + 1


def test_expect_on_http10_gets_no_100(server):
    data = b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"
    raw = server.raw(data, timeout=10)
    assert b"100 Continue" not in raw and parse_responses(raw)[0].json()["body"] == "hi"


def test_unknown_expectation_is_417(server):
    refused(server, get(b"/", b"Expect: something-else"), 417)


# --- item 6: proxies --------------------------------------------------------------------------------

def test_remote_addr_is_the_socket_peer(server):
    with open_raw(server.address(), 10) as sock:
        sock.sendall(get(b"/", b"X-Forwarded-For: 203.0.113.9", b"X-Real-IP: 203.0.113.9",
                         b"Forwarded: for=203.0.113.9", b"Connection: close"))
        raw, _ = recv_until_close(sock, 10)
        port = sock.getsockname()[1]
    seen = parse_responses(raw)[0].json()
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("127.0.0.1", str(port))


@pytest.mark.parametrize("field,scheme", [(b"X-Forwarded-Proto: https", "https"),
                                          (b"X-Forwarded-Proto: http", "http"),
                                          (b"X-Forwarded-Ssl: on", "https"),
                                          (b"X-Forwarded-Protocol: ssl", "https"),
                                          (b"X-Forwarded-Proto: HTTPS", "http"),
                                          (b"X-Other: https", "http")])
def test_trusted_peer_decides_the_scheme(server, field, scheme):
    """127.0.0.1 is in the default forwarded_allow_ips."""
    assert echoed(server, get(b"/", field, b"Connection: close"))["url_scheme"] == scheme


def test_contradictory_scheme_headers_are_400(server):
    refused(server, get(b"/", b"X-Forwarded-Proto: https", b"X-Forwarded-Ssl: off"), 400)


def test_untrusted_peer_cannot_claim_https(start_server):
    untrusted = start_server("echo_request", "--forwarded-allow-ips", "10.0.0.1")
    seen = echoed(untrusted, get(b"/", b"X-Forwarded-Proto: https", b"X-Forwarded-Ssl: on",
                                 b"Connection: close"))
    assert seen["url_scheme"] == "http"
    # Contradictions from an untrusted peer are not even looked at.
    seen = echoed(untrusted, get(b"/", b"X-Forwarded-Proto: https", b"X-Forwarded-Ssl: off",
                                 b"Connection: close"))
    assert seen["url_scheme"] == "http"


def test_trusted_cidr_range(start_server):
    ranged = start_server("echo_request", "--forwarded-allow-ips", "10.0.0.0/8,127.0.0.0/24")
    seen = echoed(ranged, get(b"/", b"X-Forwarded-Proto: https", b"Connection: close"))
    assert seen["url_scheme"] == "https"


def test_script_name_header_only_from_trusted_peers(server, start_server):
    request = get(b"/app/page", b"SCRIPT_NAME: /app", b"Connection: close")
    seen = echoed(server, request)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/app", "/page")
    untrusted = start_server("echo_request", "--forwarded-allow-ips", "10.0.0.1")
    seen = echoed(untrusted, request)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/app/page")
    assert "SCRIPT_NAME" not in seen["headers"] and "HTTP_SCRIPT_NAME" not in seen["headers"]


@pytest.fixture(scope="module")
def proxied(module_server):
    return module_server("echo_request", "--threads", "2", "--proxy-protocol")


def test_proxy_v1_sets_remote_addr(proxied):
    data = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n" + get(b"/", b"Connection: close")
    seen = echoed(proxied, data)
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("192.0.2.7", "56324")


def test_proxy_v2_sets_remote_addr(proxied):
    preamble = (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + (12).to_bytes(2, "big")
                + bytes([192, 0, 2, 8, 198, 51, 100, 1]) + (40000).to_bytes(2, "big")
                + (443).to_bytes(2, "big"))
    seen = echoed(proxied, preamble + get(b"/", b"Connection: close"))
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("192.0.2.8", "40000")


def test_proxy_protocol_is_optional_per_connection(proxied):
    assert echoed(proxied, get(b"/", b"Connection: close"))["REMOTE_ADDR"] == "127.0.0.1"


def test_proxy_line_only_at_the_start_of_a_connection(proxied):
    pp = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
    before = len(hits(proxied))
    with open_raw(proxied.address(), 10) as sock:
        sock.sendall(pp + get(b"/first") + pp + get(b"/second"))
        raw, closed = recv_until_close(sock, 10)
    assert [r.status for r in parse_responses(raw)] == [200, 400] and closed
    assert len(hits(proxied)) == before + 1


@pytest.mark.parametrize("line", [b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",
                                  b"PROXY TCP4 999.0.2.7 198.51.100.1 56324 443\r\n",
                                  b"PROXY UDP4 192.0.2.7 198.51.100.1 56324 443\r\n",
                                  b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n"])
def test_bad_proxy_line_is_400(proxied, line):
    refused(proxied, line + get(b"/"), 400)


# --- issue 13: Host, PROXY trust, body errors found late ----------------------------------------

def test_http11_without_host_is_400(server):
    refused(server, b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400)


def test_absolute_form_without_host_is_400(server):
    refused(server, b"GET http://example.com/ HTTP/1.1\r\n\r\n", 400)


def test_http10_may_leave_host_out(server):
    assert echoed(server, b"GET /old HTTP/1.0\r\n\r\n")["PATH_INFO"] == "/old"


@pytest.mark.parametrize("value", [b"a b", b":80", b"a:", b"a:b", b"a:99999", b"a/b", b"a@b",
                                   b"[::1", b"[::1]x", b"[zz::1]:80", b"a,b c", b"caf\xe9"])
def test_host_that_is_not_uri_host_and_port_is_400(server, value):
    refused(server, b"GET / HTTP/1.1\r\nHost: " + value + b"\r\n\r\n", 400)


@pytest.mark.parametrize("value", [b"", b"example.com", b"EXAMPLE.com:8080", b"127.0.0.1:1", b"[::1]:443",
                                   b"a-b.c_d~e!f$g&h'i(j)k*l+m,n;o=p%41"])
def test_valid_host_reaches_the_app(server, value):
    seen = echoed(server, b"GET / HTTP/1.1\r\nHost: " + value + b"\r\nConnection: close\r\n\r\n")
    assert seen["headers"]["HTTP_HOST"] == value.decode()


def test_permit_missing_host_serves_http11_without_host(start_server):
    permissive = start_server("echo_request", "--permit-missing-host")
    seen = echoed(permissive, b"GET /no-host HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert seen["PATH_INFO"] == "/no-host" and "HTTP_HOST" not in seen["headers"]
    # It permits a missing Host, nothing else.
    refused(permissive, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400)
    refused(permissive, b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400)


PP_V1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
PP_V2 = (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + (12).to_bytes(2, "big")
         + bytes([192, 0, 2, 7, 198, 51, 100, 1]) + (56324).to_bytes(2, "big")
         + (443).to_bytes(2, "big"))


@pytest.fixture(scope="module")
def proxy_elsewhere(module_server):
    """PROXY protocol on, but the tests' own address, 127.0.0.1, is not in proxy_allow_ips."""
    return module_server("echo_request", "--threads", "2", "--proxy-protocol",
                         "--proxy-allow-from", "192.0.2.1,10.0.0.0/8")


@pytest.mark.parametrize("preamble", [PP_V1, PP_V2], ids=["v1", "v2"])
def test_proxy_preamble_from_a_peer_not_allowed_is_403_and_logged(proxy_elsewhere, preamble):
    mark = proxy_elsewhere.log_mark()
    refused(proxy_elsewhere, preamble + get(b"/", b"Connection: close"), 403)
    proxy_elsewhere.wait_for_log(r"invalid request from 127\.0\.0\.1:\d+: PROXY protocol preamble "
                                 r"not allowed: .*proxy_allow_ips", after=mark, timeout=5)


def test_a_peer_not_allowed_is_served_without_a_preamble(proxy_elsewhere):
    seen = echoed(proxy_elsewhere, get(b"/", b"Connection: close"))
    assert seen["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.0.0.0/8,10.1.1.1", "*"])
def test_proxy_allow_from_takes_addresses_ranges_and_any(start_server, allowed):
    srv = start_server("echo_request", "--proxy-protocol", "--proxy-allow-from", allowed)
    seen = echoed(srv, PP_V1 + get(b"/", b"Connection: close"))
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("192.0.2.7", "56324")


def test_unix_socket_peers_are_allowed_a_preamble(start_server, tmp_path):
    srv = start_server("echo_request", "--proxy-protocol", "--proxy-allow-from", "192.0.2.1",
                       "--bind", f"unix:{tmp_path / 'pp.sock'}")
    seen = echoed(srv, PP_V2 + get(b"/", b"Connection: close"))
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("192.0.2.7", "56324")


@pytest.fixture(scope="module")
def reader(module_server):
    """basic.py's /consume reads the whole body and lets any read error propagate."""
    return module_server("basic", "--threads", "2")


def chunked_body_broken_after(size):
    """A chunked body whose framing breaks after `size` good bytes: past the 64 KiB the reactor
    reads ahead, so the app is already reading when the error shows."""
    chunk = b"1000\r\n" + b"z" * 4096 + b"\r\n"
    return chunk * (size // 4096) + b"zz\r\nzz\r\n0\r\n\r\n"


def test_body_framing_broken_past_the_read_ahead_is_400(reader):
    mark = reader.log_mark()
    body = chunked_body_broken_after(80 * 1024)
    raw = reader.raw(get(b"/consume", CHUNKED, method=b"POST", body=body), timeout=10)
    responses = parse_responses(raw)
    assert [r.status for r in responses] == [400], raw[:300]
    assert responses[0].header("Connection") == "close"
    reader.wait_for_log(r"invalid request body in POST /consume: invalid request body: invalid "
                        r"chunk size: zz", after=mark, timeout=5)
    assert "Error handling request" not in reader.log_text()[mark:]


def test_body_broken_past_the_read_ahead_is_400_even_if_the_app_answers(start_server):
    """echo_request catches the read error and answers 200 (as Django answers 500 for its
    UnreadablePostError): the request was malformed all the same, and nothing was sent yet."""
    echo = start_server("echo_request", "--threads", "2")
    mark = echo.log_mark()
    body = chunked_body_broken_after(80 * 1024)
    raw = echo.raw(get(b"/swallow", CHUNKED, method=b"POST", body=body), timeout=10)
    assert [r.status for r in parse_responses(raw)] == [400], raw[:300]
    assert hits(echo) == ["POST /swallow"]
    echo.wait_for_log(r"invalid request body in POST /swallow", after=mark, timeout=5)


def test_body_framing_broken_within_the_read_ahead_never_reaches_the_app(reader):
    body = chunked_body_broken_after(8 * 1024)
    raw = reader.raw(get(b"/consume", CHUNKED, method=b"POST", body=body), timeout=10)
    assert [r.status for r in parse_responses(raw)] == [400], raw[:300]


# --- item 4: slow and hostile clients ---------------------------------------------------------------

def still_waiting(sock):
    """True while the server has neither answered nor closed this connection."""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False


@pytest.mark.timeout(120)
@pytest.mark.parametrize("worker", [["--threads", "4"], ["-k", "sync"]], ids=["gthread", "sync"])
def test_slowloris_does_not_block_a_normal_client(start_server, worker):
    slow_server = start_server("echo_request", *worker)
    head = b"GET /slow HTTP/1.1\r\nHost: a\r\n"
    socks = []
    try:
        for _ in range(SLOW_CLIENTS):
            socks.append(socket.create_connection(slow_server.address(), timeout=10))
        for i in range(4):
            started = time.monotonic()
            for sock in socks:
                sock.send(head[i:i + 1])
            response = slow_server.get("/normal?round=%d" % i, timeout=10)
            elapsed = time.monotonic() - started
            assert response.status == 200 and response.json()["PATH_INFO"] == "/normal"
            assert elapsed < 3.0, f"round {i}: a normal client waited {elapsed:.1f}s"
            time.sleep(max(0.0, 1.0 - elapsed))
        assert sum(still_waiting(sock) for sock in socks) == SLOW_CLIENTS
        assert all(line.startswith("GET /normal") for line in hits(slow_server))
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.timeout(60)
def test_slow_bodies_do_not_hold_python_threads(start_server):
    """Small bodies are read ahead by the reactor: two slow uploads cannot take both threads."""
    slow_server = start_server("echo_request", "--threads", "2")
    socks = []
    try:
        for _ in range(4):
            sock = socket.create_connection(slow_server.address(), timeout=10)
            sock.sendall(get(b"/upload", b"Content-Length: 100", method=b"POST", body=b"x"))
            socks.append(sock)
        for i in range(3):
            started = time.monotonic()
            response = slow_server.get("/normal", timeout=10)
            assert response.status == 200
            assert time.monotonic() - started < 2.0
            for sock in socks:
                sock.send(b"x")
            time.sleep(0.5)
        assert hits(slow_server) == ["GET /normal"] * 3
    finally:
        for sock in socks:
            sock.close()


def test_whole_head_has_a_deadline(start_server):
    """A head trickled one byte at a time is cut at the deadline (timeout), not per read."""
    strict = start_server("echo_request", "--threads", "2", "--timeout", "2")
    started = time.monotonic()
    with open_raw(strict.address(), 10) as sock:
        for byte in b"GET /trickle HTTP/1.1\r\nHost: a\r\nX-Long: " + b"v" * 100:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.25)
            if not still_waiting(sock):
                break
        raw, _ = recv_until_close(sock, 5)
        closed_at = time.monotonic() - started
    assert 1.5 <= closed_at < 5.0, closed_at
    assert [r.status for r in parse_responses(raw)] in ([408], [])
    assert hits(strict) == []


def test_idle_keepalive_connection_is_closed(start_server):
    short = start_server("echo_request", "--threads", "2", "--keep-alive", "1")
    with open_raw(short.address(), 10) as sock:
        sock.sendall(get(b"/first"))
        responses, _ = read_responses(sock, 1, timeout=5)
        assert responses[0].header("Connection") == "keep-alive"
        started = time.monotonic()
        rest, closed = recv_until_close(sock, 5)
        idle = time.monotonic() - started
    assert closed and rest == b"", rest
    assert 0.7 <= idle < 3.0, idle


def test_worker_connections_caps_open_connections(start_server):
    """Past worker_connections a worker takes no new connection until one closes."""
    capped = start_server("echo_request", "--threads", "2", "--worker-connections", "2")
    idle = [socket.create_connection(capped.address(), timeout=10) for _ in range(2)]
    try:
        for sock in idle:
            sock.sendall(b"GET /held HTTP/1.1\r\n")
        time.sleep(0.3)
        with open_raw(capped.address(), 10) as sock:
            sock.sendall(get(b"/waiting", b"Connection: close"))
            sock.settimeout(1.0)
            with pytest.raises(socket.timeout):
                sock.recv(1)
            idle.pop().close()
            raw, closed = recv_until_close(sock, 10)
        assert closed and parse_responses(raw)[0].json()["PATH_INFO"] == "/waiting"
    finally:
        for sock in idle:
            sock.close()
