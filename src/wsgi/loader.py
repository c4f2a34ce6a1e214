"""Imports the WSGI app the way gunicorn's util.import_app does: module[:name | :factory(literals)]."""
import ast
import importlib


def load(spec):
    module_name, _, expression = spec.partition(":")
    expression = expression or "application"
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise ValueError(f"Failed to parse {expression!r} as an attribute name or function call.")
    module = importlib.import_module(module_name)
    if isinstance(tree, ast.Name):
        name, call = tree.id, None
    elif isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
        name = tree.func.id
        try:
            args = [ast.literal_eval(arg) for arg in tree.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords}
        except ValueError:
            raise ValueError(f"Failed to parse arguments as literal values: {expression!r}.")
        call = (args, kwargs)
    else:
        raise ValueError(f"Failed to parse {expression!r} as an attribute name or function call.")
    try:
        app = getattr(module, name)
    except AttributeError:
        raise AttributeError(f"Failed to find attribute {name!r} in {module_name!r}.")
    if call is not None:
        app = app(*call[0], **call[1])
    if app is None:
        raise TypeError(f"The function {name!r} in module {module_name!r} returned None.")
    if not callable(app):
        raise TypeError("Application object must be callable.")
    return app


def format_exception(error, tb):
    import traceback
    return "".join(traceback.format_exception(type(error), error, tb))
