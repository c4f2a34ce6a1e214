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
    # parse_head: flags (bit 0 = proxy), split point (little endian), bytes.
    for split in (0, len(data) // 2, 0xFFFF):
        save("parse_head", bytes([int(proxy)]) + split.to_bytes(2, "little") + data)
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
for target in ("parse_head", "chunked", "response_headers"):
    print(target, len(list((fuzz / "corpus" / target).iterdir())))
PY
