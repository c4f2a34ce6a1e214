"""rgunicorn: a pre-fork HTTP/1.1 server for Python WSGI apps, a drop-in replacement for gunicorn.

The server is the Rust extension module ``rgunicorn._rgunicorn``; ``main`` runs it in this Python
process, the way the ``rgunicorn`` console script and ``python -m rgunicorn`` do.
"""
import sys

from rgunicorn._rgunicorn import __version__
from rgunicorn._rgunicorn import main as _main

__all__ = ["__version__", "main", "run"]


def main(argv=None):
    """Run rgunicorn with ``argv`` (program name first; default ``sys.argv``); returns the exit code."""
    return _main([str(arg) for arg in (sys.argv if argv is None else argv)])


def run():
    """The console script: run with ``sys.argv`` and exit with rgunicorn's exit code."""
    sys.exit(main())
