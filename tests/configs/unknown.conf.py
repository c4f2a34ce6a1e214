"""Names that are not settings (a typo, a helper, an import), and tuning knobs with no meaning
in rgunicorn: all accepted; the settings beside them take effect."""
import os
from os.path import join

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
wrokers = 4
workers = 2
worker_tmp_dir = "/dev/shm"
sendfile = False
raw_env = ["FROM_CONFIG=" + join("a", "b")]
