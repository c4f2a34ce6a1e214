"""Django settings for greenweb; the environment overrides the few knobs an example needs."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A fixed fallback keeps the example runnable out of the box; set GREENWEB_SECRET_KEY for real use.
SECRET_KEY = os.environ.get(
    "GREENWEB_SECRET_KEY", "greenweb-dev-only-secret-key-do-not-use-in-production"
)
DEBUG = os.environ.get("GREENWEB_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]  # an example app behind whatever server is being tested

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # /upload/ is csrf_exempt: it is an API
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "greenweb.urls"
WSGI_APPLICATION = "greenweb.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("GREENWEB_DB", str(BASE_DIR / "db.sqlite3")),
        # Several worker processes share one file: wait for a write lock instead of failing.
        "OPTIONS": {"timeout": 20},
        # Keep each thread's connection between requests (Django keeps it in threading.local,
        # which rgunicorn's persistent thread states preserve), as production deployments do.
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Uploads: never buffer a whole body in memory. /upload/ reads the raw stream itself, and
# multipart files larger than 64 KiB spool to a temporary file on disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": os.environ.get("GREENWEB_LOG_LEVEL", "INFO")},
}
