"""Runs a gunicorn config (a file, or python:module) as gunicorn does, and describes its
top-level names for rgunicorn's settings: (name, (kind, payload), repr)."""
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
import types

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def run_file(path):
    name = "__config__"
    if path.endswith((".py", ".pyc")):
        spec = importlib.util.spec_from_file_location(name, path)
    else:
        loader = importlib.machinery.SourceFileLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_module(name):
    return importlib.import_module(name)


def arity(f):
    """gunicorn's util.get_arity: the positional parameters; -1 when it cannot tell."""
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return -1
    return sum(1 for p in parameters if p.kind in POSITIONAL)


def kind(value, home):
    if value is None:
        return ("none", None)
    if isinstance(value, (bool, float, str)):
        return (type(value).__name__, value)
    if isinstance(value, int):
        return ("int", value) if -2**63 <= value < 2**63 else ("other", None)
    if isinstance(value, types.ModuleType):
        return ("module", None)
    if isinstance(value, (list, tuple)):
        return ("list", [kind(item, home) for item in value])
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return ("dict", [(k, kind(v, home)) for k, v in value.items()])
    if callable(value):
        return ("callable", (arity(value), getattr(value, "__module__", None) == home))
    return ("other", None)


def describe(module):
    out = []
    for name, value in vars(module).items():
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not stop the server
            text = f"<{type(value).__name__}>"
        out.append((name, kind(value, module.__name__), text))
    return out
