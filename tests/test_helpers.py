"""The harness's own waits, against scripted process tables: a wait passes only on the state it
names, never on two readings taken on either side of a change."""
import pytest

from helpers.server import Server


class Table:
    """Stands in for a Server: each reading of the live workers takes the next scripted list."""

    def __init__(self, *readings):
        self.readings = list(readings)

    def worker_pids(self):
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def test_a_kill_between_two_readings_does_not_pass_the_wait_for_a_replacement():
    # The victim (1) is still alive at the first reading and dead at the next, and no replacement
    # comes: a wait that read the count and the victim's absence separately passed here, and the
    # metrics test then found three workers serving instead of four.
    table = Table([1, 2], [2])
    with pytest.raises(AssertionError, match="a replacement"):
        Server.wait_workers(table, 2, gone=[1], timeout=0.2, message="a replacement")


def test_the_wait_returns_the_reading_that_satisfied_it():
    table = Table([1, 2], [2], [2], [2, 3])
    assert Server.wait_workers(table, 2, gone=[1], timeout=5) == [2, 3]
