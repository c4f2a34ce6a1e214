"""``python -m rgunicorn ARGS``: the same as the ``rgunicorn`` console script."""
from rgunicorn import run

run()
