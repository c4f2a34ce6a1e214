"""The objects rgunicorn passes to gunicorn's server hooks (server, worker, req, resp, cfg, log),
with the attributes real configs use; any other attribute is an AttributeError naming those there
are. Hooks may set attributes of their own on them, as they can on gunicorn's."""
import traceback

LEVELS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}


class Facade:
    __slots__ = ("_kind", "_attrs")

    def __init__(self, kind, attrs):
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_attrs", attrs)

    def __getattr__(self, name):
        attrs = object.__getattribute__(self, "_attrs")
        try:
            return attrs[name]
        except KeyError:
            kind = object.__getattribute__(self, "_kind")
            raise AttributeError(
                f"rgunicorn's {kind} object has no attribute {name!r}; "
                f"it has: {', '.join(sorted(attrs))}") from None

    def __setattr__(self, name, value):
        object.__getattribute__(self, "_attrs")[name] = value

    def __repr__(self):
        attrs = object.__getattribute__(self, "_attrs")
        pid = f" pid={attrs['pid']}" if "pid" in attrs else ""
        return f"<rgunicorn {object.__getattribute__(self, '_kind')}{pid}>"


class Log:
    """gunicorn's logger methods, writing to rgunicorn's error log."""

    def __init__(self, emit):
        self._emit = emit

    def _write(self, level, msg, args, exc_info):
        text = str(msg) % args if args else str(msg)
        if exc_info:
            text = text + "\n" + traceback.format_exc().rstrip()
        self._emit(level, text)

    def debug(self, msg, *args, exc_info=False, **_):
        self._write("debug", msg, args, exc_info)

    def info(self, msg, *args, exc_info=False, **_):
        self._write("info", msg, args, exc_info)

    def warning(self, msg, *args, exc_info=False, **_):
        self._write("warning", msg, args, exc_info)

    warn = warning

    def error(self, msg, *args, exc_info=False, **_):
        self._write("error", msg, args, exc_info)

    def critical(self, msg, *args, exc_info=False, **_):
        self._write("critical", msg, args, exc_info)

    def exception(self, msg, *args, exc_info=True, **_):
        self._write("error", msg, args, exc_info)

    def log(self, lvl, msg, *args, exc_info=False, **_):
        level = LEVELS.get(lvl, lvl if isinstance(lvl, str) else "info")
        self._write(level, msg, args, exc_info)

    def __repr__(self):
        return "<rgunicorn log>"
