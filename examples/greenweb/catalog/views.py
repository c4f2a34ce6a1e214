"""Views of greenweb: a JSON API over the ORM plus endpoints that stress a server's I/O paths."""

import hashlib
import os
import tempfile
import time
from pathlib import Path

from django.http import (
    FileResponse,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .models import Plant

READ_CHUNK = 64 * 1024
MiB = 1024 * 1024
GiB = 1024 * MiB
DOWNLOAD_DIR = Path(
    os.environ.get("GREENWEB_DOWNLOAD_DIR", Path(tempfile.gettempdir()) / "greenweb-downloads")
)
# /download/ serves this 256-byte pattern over and over, so a client can check what it got.
PATTERN = bytes(range(256))


class BadParam(ValueError):
    """A query parameter that is not an integer in range."""


def int_param(request, name, default, minimum=0, cap=None):
    """Read ?name=N as an int >= minimum, clamped to cap; raise BadParam if it is not one."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParam(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise BadParam(f"{name} must be >= {minimum}, got {value}")
    return min(value, cap) if cap is not None else value


def bad_request(error):
    return JsonResponse({"error": str(error)}, status=400)


@require_GET
def index(request):
    return HttpResponse("greenweb ok", content_type="text/plain; charset=utf-8")


@require_GET
def status(request):
    """A small JSON view without a query: the per-request cost of Django itself."""
    return JsonResponse({"status": "ok", "app": "greenweb", "time": timezone.now().isoformat()})


@require_GET
def plant_list(request):
    try:
        limit = int_param(request, "limit", None, minimum=0)
    except BadParam as error:
        return bad_request(error)
    plants = Plant.objects.all()
    if limit is not None:
        plants = plants[:limit]
    return JsonResponse({"plants": [plant.as_dict() for plant in plants]})


@require_GET
def plant_detail(request, pk):
    try:
        plant = Plant.objects.get(pk=pk)
    except Plant.DoesNotExist:
        return JsonResponse({"error": f"plant {pk} not found"}, status=404)
    return JsonResponse(plant.as_dict())


@require_GET
def slow(request):
    try:
        ms = int_param(request, "ms", 1000, cap=60_000)
    except BadParam as error:
        return bad_request(error)
    time.sleep(ms / 1000)
    return JsonResponse({"slept_ms": ms, "pid": os.getpid()})


def _digest(chunks):
    """Hash an iterable of byte chunks; return (byte count, sha256 hex digest)."""
    total, sha = 0, hashlib.sha256()
    for chunk in chunks:
        total += len(chunk)
        sha.update(chunk)
    return total, sha.hexdigest()


def _read_stream(read):
    while chunk := read(READ_CHUNK):
        yield chunk


@csrf_exempt
@require_POST
def upload(request):
    """Count and hash the request body in 64 KiB reads, never holding it whole in memory.

    A multipart/form-data body is parsed by Django (files over 64 KiB spool to disk) and the
    uploaded files are hashed, in order, as one byte stream. Any other body is hashed raw.
    """
    if request.content_type == "multipart/form-data":
        files = [f for name in request.FILES for f in request.FILES.getlist(name)]
        total, sha256 = _digest(chunk for f in files for chunk in f.chunks(READ_CHUNK))
        return JsonResponse({"bytes": total, "sha256": sha256, "files": len(files)})
    if (
        "CONTENT_LENGTH" not in request.META
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    ):
        # A chunked body has no Content-Length, so Django would see it as empty: read the
        # server's wsgi.input until it reports the end of the body (gunicorn's behaviour).
        read = request.META["wsgi.input"].read
    else:
        read = request.read
    total, sha256 = _digest(_read_stream(read))
    return JsonResponse({"bytes": total, "sha256": sha256})


@require_GET
def stream(request):
    """Stream `chunks` chunks of `size` bytes each (at most 100000 chunks of 1 MiB)."""
    try:
        chunks = int_param(request, "chunks", 10, cap=100_000)
        size = int_param(request, "size", 1024, cap=MiB)
    except BadParam as error:
        return bad_request(error)
    chunk = (PATTERN * (size // len(PATTERN) + 1))[:size]
    response = StreamingHttpResponse(
        (chunk for _ in range(chunks)), content_type="application/octet-stream"
    )
    response["X-Greenweb-Bytes"] = str(chunks * size)
    return response


def _pattern_file(size):
    """Return the path of a file of `size` pattern bytes, writing it on first use."""
    path = DOWNLOAD_DIR / f"{size}.bin"
    if path.exists() and path.stat().st_size == size:
        return path
    DOWNLOAD_DIR.mkdir(parents=True, exist_ok=True)
    block = PATTERN * (MiB // len(PATTERN))
    # Write under a private name and rename, so a concurrent worker never serves a partial file.
    fd, tmp = tempfile.mkstemp(dir=DOWNLOAD_DIR, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for offset in range(0, size, MiB):
                out.write(block[: min(MiB, size - offset)])
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


@require_GET
def download(request):
    """Serve a file of `size` bytes (default 1 MiB, at most 1 GiB) through FileResponse.

    FileResponse hands the open file to the server's wsgi.file_wrapper, when it has one, so
    the server may send it with sendfile(2).
    """
    try:
        size = int_param(request, "size", MiB, cap=GiB)
    except BadParam as error:
        return bad_request(error)
    path = _pattern_file(size)
    return FileResponse(
        path.open("rb"), content_type="application/octet-stream", filename=f"{size}.bin"
    )
