"""A WSGI module that raises at import: the server must exit with code 4 and show the traceback."""

raise RuntimeError("broken-import-marker: this module fails on purpose")


def application(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
