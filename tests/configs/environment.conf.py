"""Values from the environment, strings where gunicorn's validators take strings too."""
import os

workers = int(os.environ.get("CFG_WORKERS", "1"))
timeout = os.getenv("CFG_TIMEOUT", "30")
preload_app = os.getenv("CFG_PRELOAD", "false")
raw_env = ["FROM_CONFIG=" + os.environ.get("CFG_VALUE", "unset")]
loglevel = os.environ.get("CFG_LOG_LEVEL", "info")
