"""Hooks that raise where neither server makes it fatal: the request hooks and worker_exit."""
workers = 1


def pre_request(worker, req):
    if req.path == "/raise-pre":
        raise RuntimeError("pre_request refuses " + req.path)


def post_request(worker, req, environ, resp):
    raise RuntimeError("post_request fails after " + req.path)


def worker_exit(server, worker):
    raise RuntimeError("worker_exit fails")
