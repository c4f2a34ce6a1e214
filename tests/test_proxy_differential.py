"""rgunicorn behind Debian's nginx and caddy: what a proxy forwards is what the app sees.

Every case of the gunicorn corpus, valid or not, and the classic request-smuggling shapes are sent
to the proxy, each on its own client connection and pipelined before an innocent second request.
Between proxy and rgunicorn a tap keeps every upstream byte (tests/helpers/proxies.py); the echo
app's answers say what the app saw. Checked, for each proxy:

- every request the proxy forwarded and rgunicorn served reached the app with the same method,
  target, fields and body: the boundaries the proxy meant are the ones rgunicorn read;
- the app never sees a request its client did not send as its own (the smuggling payloads ask for
  /smuggled, which must never arrive), nor more answers than requests on a connection;
- the proxy never forwards bytes a strict HTTP/1.1 reading finds ambiguous;
- where rgunicorn refuses what a proxy forwarded, the disagreement is one listed in DISAGREEMENTS,
  with the reason and the evidence; an unlisted one, or a listed one that no longer happens, fails.
Where a proxy refuses or normalises a request itself, that is its business.

The proxies run on 127.0.0.1 with configs written here, never as services; scripts/setup installs
them, and a missing one fails the test.
"""
import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_to_bytes

import pytest

import test_conformance as conformance
from helpers.http import recv_until_close, send_ignoring_close
from helpers.proxies import (Ambiguous, Caddy, Nginx, NginxGunicornExample, NginxHttpHost, Tap,
                             exchanges)
from helpers.server import wait_until

INNOCENT = b"GET /innocent HTTP/1.1\r\nHost: innocent.example\r\nConnection: close\r\n\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: evil.example\r\n\r\n"
CLIENTS = 48
CLIENT_DEADLINE = 10.0


def shape(*fields, body=b"", method=b"POST", line=None):
    line = line or method + b" /shape HTTP/1.1"
    return b"\r\n".join([line, b"Host: shape.example", *fields]) + b"\r\n\r\n" + body


# The classic smuggling shapes: each hides SMUGGLED where one reading of the framing would see a
# second request.
SMUGGLING = {
    "cl-te": shape(b"Content-Length: 6", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + SMUGGLED),
    "te-cl": shape(b"Transfer-Encoding: chunked", b"Content-Length: 4",
                   body=b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"),
    "te-xchunked": shape(b"Transfer-Encoding: xchunked", b"Content-Length: 4",
                         body=b"0\r\n\r\n" + SMUGGLED),
    "te-space-before-colon": shape(b"Transfer-Encoding : chunked", b"Content-Length: 4",
                                   body=b"0\r\n\r\n" + SMUGGLED),
    "te-tab-value": shape(b"Transfer-Encoding:\tchunked", body=b"0\r\n\r\n" + SMUGGLED),
    "te-vertical-tab": shape(b"Transfer-Encoding: \x0bchunked", b"Content-Length: 4",
                             body=b"0\r\n\r\n" + SMUGGLED),
    "te-twice-second-bogus": shape(b"Transfer-Encoding: chunked", b"Transfer-Encoding: x",
                                   body=b"0\r\n\r\n" + SMUGGLED),
    "te-chunked-identity": shape(b"Transfer-Encoding: chunked, identity",
                                 body=b"0\r\n\r\n" + SMUGGLED),
    "te-identity-chunked": shape(b"Transfer-Encoding: identity, chunked",
                                 body=b"0\r\n\r\n" + SMUGGLED),
    "te-upper-case": shape(b"Transfer-Encoding: CHUNKED", body=b"0\r\n\r\n" + SMUGGLED),
    "te-quoted": shape(b'Transfer-Encoding: "chunked"', b"Content-Length: 4",
                       body=b"0\r\n\r\n" + SMUGGLED),
    "te-bare-lf-before": shape(b"X-A: b\nTransfer-Encoding: chunked", b"Content-Length: 4",
                               body=b"0\r\n\r\n" + SMUGGLED),
    "te-newline-in-name": shape(b"Transfer-Encoding\n: chunked", b"Content-Length: 4",
                                body=b"0\r\n\r\n" + SMUGGLED),
    "te-obs-fold": shape(b"X-A: b", b" Transfer-Encoding: chunked", b"Content-Length: 4",
                         body=b"0\r\n\r\n" + SMUGGLED),
    "te-folded-value": shape(b"Transfer-Encoding: identity", b" chunked", b"Content-Length: 4",
                             body=b"0\r\n\r\n" + SMUGGLED),
    "te-http10": shape(b"Transfer-Encoding: chunked", line=b"POST /shape HTTP/1.0",
                       body=b"0\r\n\r\n" + SMUGGLED),
    "cl-duplicate-different": shape(b"Content-Length: 0", b"Content-Length: %d" % len(SMUGGLED),
                                    body=SMUGGLED),
    "cl-duplicate-same": shape(b"Content-Length: 4", b"Content-Length: 4", body=b"abcd" + SMUGGLED),
    "cl-list": shape(b"Content-Length: 4, 4", body=b"abcd" + SMUGGLED),
    "cl-plus": shape(b"Content-Length: +4", body=b"abcd" + SMUGGLED),
    "cl-minus": shape(b"Content-Length: -4", body=b"abcd" + SMUGGLED),
    "cl-leading-space-digit": shape(b"Content-Length: 0 4", body=b"abcd" + SMUGGLED),
    "cl-hex": shape(b"Content-Length: 0x4", body=b"abcd" + SMUGGLED),
    "cl-on-get": shape(b"Content-Length: %d" % len(SMUGGLED), method=b"GET", body=SMUGGLED),
    "chunk-size-overflow": shape(b"Transfer-Encoding: chunked",
                                 body=b"10000000000000004\r\nabcd\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-size-64-bit-wrap": shape(b"Transfer-Encoding: chunked",
                                    body=b"ffffffffffffffff\r\nabcd\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-size-bare-lf": shape(b"Transfer-Encoding: chunked",
                                body=b"4\nabcd\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-data-bare-lf": shape(b"Transfer-Encoding: chunked",
                                body=b"4\r\nabcd\n0\r\n\r\n" + SMUGGLED),
    "chunk-last-bare-lf": shape(b"Transfer-Encoding: chunked",
                                body=b"4\r\nabcd\r\n0\n\n" + SMUGGLED),
    "chunk-extension-bare-cr": shape(b"Transfer-Encoding: chunked",
                                     body=b"4;a=\rb\r\nabcd\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-data-too-long": shape(b"Transfer-Encoding: chunked",
                                 body=b"2\r\nabcd\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-trailer-te": shape(b"Transfer-Encoding: chunked",
                              body=b"0\r\nTransfer-Encoding: chunked\r\n\r\n" + SMUGGLED),
    "obs-fold": shape(b"X-Folded: a", b" b", body=b""),
    "request-line-bare-cr": b"GET /shape\rGET /smuggled HTTP/1.1\r\nHost: shape.example\r\n\r\n",
    "request-line-bare-cr-end": b"GET /shape HTTP/1.1\rHost: a\r\nHost: shape.example\r\n\r\n",
    "header-bare-cr": shape(b"X-A: b\rTransfer-Encoding: chunked", b"Content-Length: 4",
                            body=b"0\r\n\r\n" + SMUGGLED),
    "nul-in-header": shape(b"X-A: b\x00c", body=b""),
    "host-twice": b"GET /shape HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    "absolute-form-other-host": b"GET http://other.example/shape HTTP/1.1\r\nHost: shape.example\r\n\r\n",
}

# Why rgunicorn refuses some of what a proxy forwarded. The evidence is the forwarded request
# (the tap's bytes; `record.json` in the test's tmp dir lists every case) against rgunicorn's
# answer; each is a refusal gunicorn 27 makes too, so none is a framing disagreement.
LIMITS = ("rgunicorn's default limits are gunicorn's (request line 4094 bytes, 100 fields, 8190 "
          "bytes a field line); nginx takes 8 KiB lines and any number of fields, caddy (Go) 1 MiB "
          "of head: what they forward past rgunicorn's limits is 414/431. Configuration: set "
          "limit_request_line/_fields/_field_size to the proxy's, or the proxy's to these")
RAW_TARGET = ("nginx forwards the request-target bytes as the client sent them ($request_uri), "
              "raw UTF-8 or latin-1 included; rgunicorn, like gunicorn 27, refuses a target with a "
              "byte outside visible ASCII (RFC 9112 section 3.2, RFC 3986). caddy percent-encodes "
              "such bytes, and rgunicorn serves that")
CONTROL = ("nginx forwards field values with control bytes other than NUL, CR and LF (here BEL, "
           "DEL); rgunicorn refuses them (RFC 9110 section 5.5), as gunicorn 27 does; caddy (Go) "
           "refuses them itself")
TWO_CONTENT_TYPES = ("both proxies forward two Content-Type lines; a second one cannot be merged "
                     "(RFC 9110 section 5.3) and rgunicorn refuses it, as gunicorn 27 does")
GO_TARGETS = ("caddy (Go's net/http) accepts an asterisk-form target on GET and an authority-form "
              "one on GET (example.com:443, which it reads as scheme 'example.com' and forwards as "
              "'GET 443'); rgunicorn refuses both targets, as gunicorn 27 does")
CONNECT = ("caddy forwards CONNECT as a plain request; rgunicorn answers 501, it never tunnels "
           "(a proxy that saw a 2xx would then relay raw bytes as requests)")
NGINX_LIKE = {
    "corpus:invalid/006": (414, LIMITS),
    "corpus:invalid/008": (431, LIMITS),
    "corpus:invalid/009": (431, LIMITS),
    "corpus:invalid/limit_header_default_01": (431, LIMITS),
    "corpus:delta-27.0.1/invalid/rfc9112_target_non_ascii_01": (400, RAW_TARGET),
    "corpus:delta-27.0.1/invalid/rfc9112_target_non_ascii_02": (400, RAW_TARGET),
    "corpus:valid/027": (400, RAW_TARGET),
    "corpus:invalid/rfc9110_field_value_ctl_bel_01": (400, CONTROL),
    "corpus:invalid/rfc9110_field_value_ctl_del_01": (400, CONTROL),
    "corpus:invalid/041": (400, TWO_CONTENT_TYPES),
}
DISAGREEMENTS = {
    "nginx": NGINX_LIKE,
    "nginx-gunicorn-example": NGINX_LIKE,
    "caddy": {
        "corpus:invalid/006": (414, LIMITS),
        "corpus:valid/024": (414, LIMITS),
        "corpus:invalid/007": (431, LIMITS),
        "corpus:invalid/008": (431, LIMITS),
        "corpus:invalid/009": (431, LIMITS),
        "corpus:invalid/limit_header_default_01": (431, LIMITS),
        "corpus:valid/026": (431, LIMITS),
        "corpus:invalid/041": (400, TWO_CONTENT_TYPES),
        "corpus:invalid/rfc9112_target_asterisk_non_options_01": (400, GO_TARGETS),
        "corpus:invalid/rfc9112_target_authority_non_connect_01": (400, GO_TARGETS),
        "corpus:valid/rfc9112_target_authority_connect_01": (501, CONNECT),
        "corpus:valid/rfc9112_target_authority_ipv6_01": (501, CONNECT),
    },
}


def corpus_cases():
    return {f"corpus:{case}": conformance.case_bytes(case) for case in sorted(conformance.CASES)}


CASES = {**corpus_cases(), **{f"shape:{name}": data for name, data in SMUGGLING.items()}}


def send_case(port, data, keep):
    """One client connection: the case, then the innocent request; returns its local port and
    what the proxy answered. The socket goes to `keep`, to be closed when the run is over: its
    port, which the proxy passes on as X-Client-Port, then names one case only."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_DEADLINE)
    keep.append(sock)
    send_ignoring_close(sock, data + INNOCENT)
    answer, _ = recv_until_close(sock, CLIENT_DEADLINE)
    return sock.getsockname()[1], answer


def statuses(answer):
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.[01] (\d{3}) ", answer)]


@pytest.fixture(scope="module")
def rgunicorn(module_server, tmp_path_factory):
    sock = tmp_path_factory.mktemp("differential") / "rg.sock"
    # Keep-alive longer than the proxies' own idle timeouts, so a proxy always closes an idle
    # upstream connection first and never writes into one rgunicorn is closing.
    return module_server("echo_request", "-w", "1", "--threads", "4", "--keep-alive", "30",
                         "--bind", f"unix:{sock}")


def run_through(proxy_class, rgunicorn, tmp):
    """Sends every case through a fresh proxy; returns (client results, tap connections)."""
    tap = Tap(tmp / "tap.sock", rgunicorn.unix_path)
    proxy = proxy_class(tmp, tmp / "tap.sock").start()
    sockets = []
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = {name: pool.submit(send_case, proxy.port, data, sockets)
                       for name, data in CASES.items()}
            clients = {name: future.result() for name, future in futures.items()}

        def settled():
            """Every upstream connection has its answers (or was closed), and nothing moves."""
            if tap.quiet_for() < 0.3:
                return False
            for up, down, open_ in tap.snapshot():
                if open_ and any(r.complete and answer is None for r, answer in exchanges(up, down)):
                    return False
            return True
        wait_until(settled, timeout=20, message="upstream connections to settle")
    finally:
        proxy.stop()
        tap.close()
        for sock in sockets:
            sock.close()
    return clients, tap.snapshot()


def check(proxy_name, clients, connections):
    """The properties of the module docstring; returns (violations, disagreements, record)."""
    by_port = {port: name for name, (port, _) in clients.items()}
    assert len(by_port) == len(clients), "two clients had the same port"
    violations, disagreements = [], {}
    record = {name: {"proxy answered": statuses(answer), "forwarded": [], "app saw": []}
              for name, (_, answer) in clients.items()}
    for up, down, _ in connections:
        try:
            served = exchanges(up, down)
        except Ambiguous as error:
            violations.append(f"{proxy_name} forwarded ambiguous bytes: {error}")
            continue
        for request, response in served:
            port = request.header("X-Client-Port")
            name = by_port.get(int(port)) if port and port.isdigit() else None
            if name is None:
                violations.append(f"{proxy_name} forwarded a request of no client: {request.target}")
                continue
            cut = "" if request.complete else " (body cut short by the proxy)"
            record[name]["forwarded"].append(f"{request.method} {request.target}{cut}")
            if response is None:
                continue
            if not request.complete:
                violations += cut_short(proxy_name, name, response)
                continue
            if response.status != 200:
                disagreements[name] = response.status
                continue
            seen = response.json()
            record[name]["app saw"].append(f"{seen['REQUEST_METHOD']} {seen['RAW_URI']}")
            violations += same_request(proxy_name, name, request, seen)
    return violations, disagreements, record


def cut_short(proxy_name, name, response):
    """A request whose body the proxy stopped sending: refused, or the app was told of it."""
    if response.status != 200 or response.json()["body_error"]:
        return []
    return [f"{proxy_name} {name}: the app read a whole body the proxy never finished sending"]


def same_request(proxy_name, name, request, seen):
    """What the app saw against what the proxy sent; and only requests the client sent."""
    problems = []
    # Proxies may percent-encode what the client sent raw (caddy does).
    if unquote_to_bytes(seen["RAW_URI"]) not in unquote_to_bytes(CASES[name] + INNOCENT):
        problems.append(f"{proxy_name} {name}: the app saw {seen['RAW_URI']!r}, which its client "
                        f"never sent")
    want = (request.method, request.target, request.version, request.as_environ_headers(),
            request.body.decode("latin-1"), None)
    got = (seen["REQUEST_METHOD"], seen["RAW_URI"], seen["SERVER_PROTOCOL"], seen["headers"],
           seen["body"], seen["body_error"])
    if want != got:
        problems.append(f"{proxy_name} {name}: forwarded {want!r}, the app saw {got!r}")
    return problems


PROXIES = [Nginx, NginxGunicornExample, Caddy]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("proxy_class", PROXIES, ids=[p.name for p in PROXIES])
def test_app_sees_what_the_proxy_forwarded(proxy_class, rgunicorn, tmp_path):
    clients, connections = run_through(proxy_class, rgunicorn, tmp_path)
    violations, disagreements, record = check(proxy_class.name, clients, connections)
    (tmp_path / "record.json").write_text(json.dumps(record, indent=1, sort_keys=True))
    assert not violations, "\n".join(violations)
    # Enough cases must have gone through the proxy to the app, or this test proves nothing.
    reached = [name for name, seen in record.items() if seen["app saw"]]
    assert len(reached) >= 40, record
    listed = {case: status for case, (status, _) in DISAGREEMENTS[proxy_class.name].items()}
    unexpected = {case: (disagreements.get(case), listed.get(case))
                  for case in set(disagreements) | set(listed)
                  if disagreements.get(case) != listed.get(case)}
    assert not unexpected, ("rgunicorn's answer (refused with / listed as) to what the proxy "
                            f"forwarded: {unexpected}; see {tmp_path / 'record.json'}")


@pytest.mark.timeout(60)
def test_nginx_http_host_drops_host_over_http11(rgunicorn, tmp_path):
    """Evidence for the `Nginx` docstring: with `proxy_set_header Host $http_host` and HTTP/1.1
    upstream, an HTTP/1.0 request without Host goes upstream as HTTP/1.1 without Host (nginx
    drops an empty header), which RFC 9112 section 3.2 makes a 400; `$host` with a server_name
    sends one."""
    for proxy_class, status, host in [(NginxHttpHost, 400, None), (Nginx, 200, "localhost")]:
        tap = Tap(tmp_path / f"{proxy_class.name}.sock", rgunicorn.unix_path)
        proxy = proxy_class(tmp_path, tmp_path / f"{proxy_class.name}.sock").start()
        kept = []
        try:
            _, answer = send_case(proxy.port, b"GET /old HTTP/1.0\r\n\r\n", kept)
            wait_until(lambda: any(down for _, down, _ in tap.snapshot()), timeout=10,
                       message="rgunicorn's answer")
        finally:
            proxy.stop()
            tap.close()
            for sock in kept:
                sock.close()
        [(up, down, _)] = tap.snapshot()
        [(forwarded, response)] = exchanges(up, down)
        assert (forwarded.version, forwarded.header("Host")) == ("HTTP/1.1", host)
        assert response.status == status and statuses(answer)[0] == status
