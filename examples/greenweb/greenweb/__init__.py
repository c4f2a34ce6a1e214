"""greenweb: a small Django project that exercises a WSGI server (rgunicorn's example app)."""
