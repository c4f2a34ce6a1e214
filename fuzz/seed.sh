#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the gunicorn conformance corpus (tests/conformance), decoding
# each .http file by the rules of tests/conformance/gunicorn-requests/README.md and prefixing the
# control bytes each target reads first. Safe to run again; existing corpus files stay.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 - "$here" <<'PY'
import hashlib, json, pathlib, re, sys

fuzz = pathlib.Path(sys.argv[1])
corpus = fuzz.parent / "tests" / "conformance" / "gunicorn-requests"
cases = json.loads((corpus.parent / "expectations.json").read_text())


def decode(raw):
    """The corpus README's five rules, in its order."""
    data = raw.replace(b"\n", b"").replace(b"\\r\\n", b"\r\n").replace(b"\\0", b"\0")
    data = data.replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    data = re.sub(rb"\\x([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)
    assert b"\\" not in data, "broken fixture"
    return data


def save(target, data):
    folder = fuzz / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


counts = {}
for path in sorted(corpus.rglob("*.http")):
    case = str(path.relative_to(corpus).with_suffix(""))
    data = decode(path.read_bytes())
    proxy = "proxy_protocol" in cases.get(case, {}).get("settings", {})
    # parse_head: flags (bits 0-1 = PROXY policy, 1 accepts; bit 2 = permit_missing_host),
    # split point (little endian), bytes.
    for split in (0, len(data) // 2, 0xFFFF):
        for permit in (0, 4):
            flags = int(proxy) | permit
            save("parse_head", bytes([flags]) + split.to_bytes(2, "little") + data)
    # proxy_preamble: split point, bytes (the PROXY cases, whole and cut after the preamble).
    if proxy:
        for split in (0, 20, 0xFFFF):
            save("proxy_preamble", split.to_bytes(2, "little") + data)
    # chunked: what follows the head of a chunked request; cap byte, 8 seed bytes, body.
    head_end = data.find(b"\r\n\r\n")
    if b"chunked" in data[:head_end].lower() and head_end >= 0:
        body = data[head_end + 4:]
        save("chunked", bytes([255]) + bytes(range(1, 9)) + body)
        save("chunked", bytes([0]) + bytes(range(9, 17)) + body)
    # response_headers: status 0xFF name 0xFF value, from the corpus' own field lines.
    for line in data[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        save("response_headers", b"200 OK\xff" + name + b"\xff" + value.strip(b" \t"))
for extra in (b"200 OK", b"404 Not Found\xffX-A\xffb", b"200 \xe9t\xe9\xffX\xffcaf\xc3\xa9",
              b"200 OK\r\nX: y\xffX\xffa\r\nb"):
    save("response_headers", extra)
v2 = b"\r\n\r\n\0\r\nQUIT\n"
for preamble in (b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n",
                 b"PROXY TCP6 ::1 2001:db8::2 1 65535\r\n", b"PROXY UNKNOWN\r\n",
                 v2 + b"\x21\x11\x00\x0c" + bytes([192, 0, 2, 8, 198, 51, 100, 1, 0x9c, 0x40, 1, 0xbb]),
                 v2 + b"\x21\x21\x00\x24" + bytes(range(32)) + b"\x00\x01\x00\x02",
                 v2 + b"\x20\x00\x00\x00", v2 + b"\x21\x11\x00\x0f" + bytes(15)):
    save("proxy_preamble", b"\xff\xff" + preamble + b"GET / HTTP/1.1\r\n\r\n")
for target in ("parse_head", "proxy_preamble", "chunked", "response_headers"):
    print(target, len(list((fuzz / "corpus" / target).iterdir())))
PY
