#!/usr/bin/env python3
"""Turns the gunicorn corpus expectations (.py files) into expectations.json for the Rust tests.

Run once after the corpus changes: python3 tests/conformance/extract_expectations.py
It needs no gunicorn install: `cfg`, `Config` and the error classes are stubs that only record
what a case asks for. Byte strings and header values are written as latin-1 text, so every JSON
character is one byte (that is how gunicorn itself maps header bytes to str).
"""

import json
import os
import sys
import types
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "gunicorn-requests")
OUT = os.path.join(HERE, "expectations.json")
FOLDERS = ("valid", "invalid", "delta-27.0.1/valid", "delta-27.0.1/invalid")


class Config:
    """Records the settings a case changes; the defaults live in the Rust test."""

    def __init__(self):
        self.settings = {}

    def set(self, name, value):
        self.settings[name] = value


def error_module():
    module = types.ModuleType("gunicorn.http.errors")

    def make(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (Exception,), {})

    module.__getattr__ = make
    return module


def install_stubs():
    gunicorn = types.ModuleType("gunicorn")
    config = types.ModuleType("gunicorn.config")
    config.Config = Config
    http = types.ModuleType("gunicorn.http")
    errors = error_module()
    gunicorn.config, gunicorn.http, http.errors = config, http, errors
    sys.modules.update({"gunicorn": gunicorn, "gunicorn.config": config,
                        "gunicorn.http": http, "gunicorn.http.errors": errors})


def uri(raw):
    # gunicorn reads a target that starts with "//" as a path, not as a network location.
    if raw.startswith("//"):
        parts = urllib.parse.urlsplit("." + raw)
        parts = parts._replace(path=parts.path[1:])
    else:
        parts = urllib.parse.urlsplit(raw)
    return {"raw": raw, "scheme": parts.scheme, "path": parts.path,
            "query": parts.query, "fragment": parts.fragment}


def text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return value


def one_request(expect):
    out = {
        "method": expect["method"],
        "raw": expect["uri"]["raw"],
        "path": expect["uri"]["path"],
        "query": expect["uri"]["query"],
        "fragment": expect["uri"]["fragment"],
        "version": list(expect["version"]),
        "headers": [[name, text(value)] for name, value in expect["headers"]],
        "body": text(expect["body"]),
    }
    if "trailers" in expect:
        out["trailers"] = [[name, text(value)] for name, value in expect["trailers"]]
    return out


def load(path):
    scope = {"uri": uri, "cfg": Config()}
    with open(path, encoding="utf-8") as handle:
        exec(compile(handle.read(), path, "exec"), scope)
    expect = scope["request"]
    case = {"settings": scope["cfg"].settings}
    if isinstance(expect, type):
        case["error"] = expect.__name__
    else:
        expect = expect if isinstance(expect, list) else [expect]
        case["requests"] = [one_request(e) for e in expect]
    return case


def main():
    install_stubs()
    cases = {}
    for folder in FOLDERS:
        for name in sorted(os.listdir(os.path.join(CORPUS, folder))):
            if name.endswith(".py"):
                cases[folder + "/" + name[:-3]] = load(os.path.join(CORPUS, folder, name))
    with open(OUT, "w", encoding="utf-8") as handle:
        json.dump(cases, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print("%d cases -> %s" % (len(cases), OUT))


if __name__ == "__main__":
    main()
