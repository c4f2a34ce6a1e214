"""Serve MODULE:CALLABLE with bjoern (which has no command line): run_bjoern.py APP HOST PORT DIR."""

import importlib
import sys

import bjoern


def main():
    target, host, port, directory = sys.argv[1:5]
    sys.path.insert(0, directory)
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name or "application")
    print(f"bjoern listening on {host}:{port}", file=sys.stderr, flush=True)
    bjoern.run(app, host, int(port))


if __name__ == "__main__":
    main()
