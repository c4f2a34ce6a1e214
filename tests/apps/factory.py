"""An app factory for the `module:factory(args)` app spec."""


def create_app(name="default"):
    """Returns a WSGI app that answers `factory <name>`."""
    body = f"factory {name}".encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
