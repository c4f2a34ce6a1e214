"""App for lifecycle tests: reports its code version and pid, sleeps, spins or blocks on request,
and makes every new worker die at once while a flag file exists (to cause a crash loop)."""
import os
import time

FLAG = os.environ.get("RGT_CRASH_FLAG")
STATE_DIR = os.environ.get("RGT_STATE_DIR", "")


def _crash_if_flagged():
    if FLAG and os.path.exists(FLAG):
        os._exit(13)


VERSION = "v1"


def _note_process(event):
    """Appends `<event> <VERSION> <pid>` to the state dir's `processes` file, so a test knows
    which code each process runs."""
    if STATE_DIR:
        with open(os.path.join(STATE_DIR, "processes"), "a") as f:
            f.write(f"{event} {VERSION} {os.getpid()}\n")


def _after_fork():
    _note_process("fork")
    _crash_if_flagged()


_note_process("import")
# Runs in each worker right after it is forked (from the zygote, or the master with --preload).
os.register_at_fork(after_in_child=_after_fork)


def _params(environ):
    return dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)


def _block(params):
    """Waits (at most ?max_ms=) until the test creates <token>.release in the state dir; writes
    <token>.started (with this pid) first, so the test knows the request is in the app."""
    token = params.get("token", "block")
    with open(os.path.join(STATE_DIR, f"{token}.started"), "a") as f:
        f.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + int(params.get("max_ms", "15000")) / 1000
    release = os.path.join(STATE_DIR, f"{token}.release")
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.01)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    params = _params(environ)
    if path == "/spin":
        while True:
            pass
    if path == "/sleep":
        time.sleep(int(params.get("ms", "100")) / 1000)
    if path == "/block":
        _block(params)
    if path == "/upload":
        size = 0
        while True:
            chunk = environ["wsgi.input"].read(4096)
            if not chunk:
                break
            size += len(chunk)
        body = f"{size}\n".encode()
    else:
        body = f"{VERSION} {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
