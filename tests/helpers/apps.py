"""The lifecycle test app as a deploy changes it: a private copy whose version a test rewrites,
or breaks with a syntax error, before a HUP; and the version a server answers with."""
import re
import shutil

from helpers.server import APPS


def copy_lifecycle(directory):
    """Copies the lifecycle app into `directory` (a server runs it with --chdir there)."""
    shutil.copy(APPS / "lifecycle.py", directory / "lifecycle.py")
    return directory


def set_version(app_dir, version, broken=False):
    """Rewrites the copy as `version`, with a syntax error at its end when `broken`."""
    text = re.sub(r'VERSION = ".*"', f'VERSION = "{version}"', (APPS / "lifecycle.py").read_text())
    (app_dir / "lifecycle.py").write_text(text + ("\ndef broken(:\n" if broken else ""))


def version_of(server):
    """The code version that answers a fresh request."""
    return server.get("/").text.split()[0]
