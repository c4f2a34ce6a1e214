"""WSGI entry point: `rgunicorn greenweb.wsgi` serves `application`, as gunicorn would."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "greenweb.settings")

application = get_wsgi_application()
