"""Settings only: the shape most gunicorn.conf.py files have."""
workers = 2
threads = 2
timeout = 20
graceful_timeout = 10
keepalive = 3
max_requests = 1000
max_requests_jitter = 50
raw_env = ["FROM_CONFIG=settings"]
loglevel = "info"
errorlog = "-"
