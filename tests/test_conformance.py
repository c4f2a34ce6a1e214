"""gunicorn's request-parser corpus (tests/conformance/gunicorn-requests, 27.0.1 behaviour) through
the real binary: one parametrized test per case.

Each .http file is decoded by the rules of the corpus README and sent over one TCP connection.
- valid cases reach tests/apps/echo_request.py, which answers with JSON of what WSGI saw; it is
  compared with tests/conformance/expectations.json: method, raw target (RAW_URI), path
  (PATH_INFO, percent-decoded as WSGI does), query, version, headers and body. Pipelined cases
  (several requests in one send) get one response each, in order, on the same connection.
- invalid cases get the status gunicorn answers their error class with (400, 414, 431, 501; a
  premature EOF, NoMoreData, gets no response or a 400), the connection is closed, and the app
  never runs (it records every call in its state dir).

Headers are compared as the WSGI environ shows them: duplicates merged with ',' and their order
lost. That the parser keeps names, values and order exactly is proven at the parser level by
src/http/conformance_tests.rs, which also feeds every case in many splits.

Cases that are not run, and why, live in tests/conformance/deviations.json, shared with that Rust
test so the two lists cannot drift apart; so do the cases that lack Host (run with
--permit-missing-host, since HTTP/1.1 without Host is refused by default) and the valid cases that
rgunicorn refuses with 501 (a transfer coding besides chunked). Servers run gthread with 2 workers x 4 threads, so
keep-alive and pipelining are exercised; a case that changes settings gets a server of its own.
"""
import json
import socket
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from helpers.http import open_raw, parse_responses, read_responses, recv_until_close, send_ignoring_close

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
CORPUS = CONFORMANCE / "gunicorn-requests"
CASES = json.loads((CONFORMANCE / "expectations.json").read_text())
DEVIATIONS = json.loads((CONFORMANCE / "deviations.json").read_text())
SKIPPED = DEVIATIONS["skipped"]
TRUNCATED_BODY = DEVIATIONS["truncated_body"]
PERMIT_MISSING_HOST = DEVIATIONS["permit_missing_host"]
UNSUPPORTED_CODING = DEVIATIONS["unsupported_transfer_coding"]

SERVER_ARGS = ("-w", "2", "--threads", "4")
# Corpus setting -> the command-line option that sets it in rgunicorn.
SETTING_FLAGS = {
    "limit_request_line": "--limit-request-line",
    "limit_request_fields": "--limit-request-fields",
    "limit_request_field_size": "--limit-request-field_size",
    "forwarded_allow_ips": "--forwarded-allow-ips",
}
# gunicorn silently caps limit_request_line at 8190; rgunicorn refuses a larger value at startup,
# so the case gets the value gunicorn actually applies.
SETTING_VALUES = {("limit_request_line", 8200): 8190}

# The status gunicorn 27 answers each error class with (corpus README; workers/base.py).
STATUS = {"LimitRequestLine": 414, "LimitRequestHeaders": 431, "UnsupportedTransferCoding": 501,
          "ExpectationFailed": 417, "ForbiddenProxyRequest": 403}
REQUEST_TIMEOUT = 15.0


def case_ids(kind):
    return sorted(case for case, spec in CASES.items() if kind in spec)


def decode_http(raw):
    """The corpus README's rules, in its order."""
    data = raw.replace(b"\n", b"")
    data = data.replace(b"\\r\\n", b"\r\n").replace(b"\\0", b"\0")
    data = data.replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    out, i = bytearray(), 0
    while i < len(data):
        if data[i:i + 2] == b"\\x" and len(data) >= i + 4:
            try:
                out.append(int(data[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out.append(data[i])
        i += 1
    assert b"\\" not in out, "broken fixture: backslash left"
    return bytes(out)


def case_bytes(case):
    return decode_http((CORPUS / f"{case}.http").read_bytes())


def server_args(case):
    """The extra rgunicorn arguments a case's settings need."""
    args = []
    for name, value in sorted(CASES[case]["settings"].items()):
        if name == "proxy_protocol":
            assert value is True
            args.append("--proxy-protocol")
            continue
        assert name in SETTING_FLAGS, f"{case} sets {name}: it must be in deviations.json"
        args += [SETTING_FLAGS[name], str(SETTING_VALUES.get((name, value), value))]
    if case in PERMIT_MISSING_HOST:
        args.append("--permit-missing-host")
    return tuple(args)


def skip_if_listed(case):
    if case in SKIPPED:
        pytest.skip(SKIPPED[case])


@pytest.fixture(scope="module")
def server_for(module_server):
    """server_for(case) -> a running echo server with the case's settings (started once)."""
    servers = {}

    def get(case):
        args = server_args(case)
        if args not in servers:
            servers[args] = module_server("echo_request", *SERVER_ARGS, *args)
        return servers[args]
    return get


def as_environ(want):
    """What echo_request.py reports for an expected request of expectations.json."""
    headers = {}
    for name, value in want["headers"]:
        key = {"CONTENT-TYPE": "CONTENT_TYPE", "CONTENT-LENGTH": "CONTENT_LENGTH"}.get(
            name, "HTTP_" + name.replace("-", "_"))
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return {
        "REQUEST_METHOD": want["method"],
        "RAW_URI": want["raw"],
        "PATH_INFO": unquote_to_bytes(want["path"]).decode("latin-1"),
        "QUERY_STRING": want["query"],
        "SERVER_PROTOCOL": "HTTP/%d.%d" % tuple(want["version"]),
        "headers": headers,
    }


def seen_by_app(got):
    return {key: got.get(key) for key in ("REQUEST_METHOD", "RAW_URI", "PATH_INFO", "QUERY_STRING",
                                          "SERVER_PROTOCOL", "headers")}


def test_every_case_is_listed_and_every_deviation_is_a_case():
    files = {str(p.relative_to(CORPUS).with_suffix("")) for p in CORPUS.rglob("*.http")}
    assert files == set(CASES)
    listed = (set(SKIPPED) | set(DEVIATIONS["skipped_in_parser_test"]) | set(TRUNCATED_BODY)
              | set(PERMIT_MISSING_HOST) | set(UNSUPPORTED_CODING))
    assert listed <= set(CASES)
    assert len(case_ids("requests")) + len(case_ids("error")) == len(CASES) == 145


@pytest.mark.parametrize("case", [c for c in case_ids("requests")
                                  if c not in TRUNCATED_BODY and c not in UNSUPPORTED_CODING])
def test_valid_case_reaches_the_app_as_sent(case, server_for):
    skip_if_listed(case)
    wants = CASES[case]["requests"]
    server = server_for(case)
    with open_raw(server.address(), REQUEST_TIMEOUT) as sock:
        sock.sendall(case_bytes(case))
        responses, _ = read_responses(sock, len(wants), timeout=REQUEST_TIMEOUT)
    assert len(responses) == len(wants), responses
    for i, (resp, want) in enumerate(zip(responses, wants)):
        assert resp.status == 200, (i, resp, resp.body[:300])
        got = resp.json()
        assert seen_by_app(got) == as_environ(want), f"request {i} of {case}"
        assert got["body_error"] is None
        assert got["body"] == want["body"], f"request {i} of {case}"


def send_then_eof(server, data):
    """Sends `data` at once, half-closes, reads to EOF: returns the statuses answered."""
    with open_raw(server.address(), REQUEST_TIMEOUT) as sock:
        if send_ignoring_close(sock, data):
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        data, closed = recv_until_close(sock, REQUEST_TIMEOUT)
    assert closed, f"connection left open after {data[:200]!r}"
    return [r.status for r in parse_responses(data)], data


@pytest.mark.parametrize("case", sorted(TRUNCATED_BODY))
def test_truncated_body_never_reaches_the_app(case, server_for):
    """A body cut short by EOF: a deviation from gunicorn, which hands the app the short body."""
    server = server_for(case)
    hits = len(server.records("hits"))
    statuses, data = send_then_eof(server, case_bytes(case))
    assert statuses == [400], data[:300]
    assert server.records("hits")[hits:] == []


@pytest.mark.parametrize("case", case_ids("error") + sorted(UNSUPPORTED_CODING))
def test_invalid_case_is_refused_before_the_app(case, server_for):
    skip_if_listed(case)
    error = "UnsupportedTransferCoding" if case in UNSUPPORTED_CODING else CASES[case]["error"]
    server = server_for(case)
    hits = len(server.records("hits"))
    # All at once, then EOF: the server must decide from these bytes alone (an incomplete
    # request would otherwise wait for the head timeout).
    statuses, data = send_then_eof(server, case_bytes(case))
    if error == "NoMoreData":
        assert statuses in ([], [400]), statuses
    else:
        assert statuses == [STATUS.get(error, 400)], f"{error}: {data[:300]!r}"
    assert server.records("hits")[hits:] == [], f"the app ran for a request that is {error}"
