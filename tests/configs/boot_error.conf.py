"""A post_fork hook that raises: a worker boot error, which stops the server at first start."""
workers = 1


def post_fork(server, worker):
    raise RuntimeError("post_fork cannot set up")
