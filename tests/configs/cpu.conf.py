"""gunicorn's documented rule of thumb for the number of workers."""
import multiprocessing

workers = multiprocessing.cpu_count() * 2 + 1
