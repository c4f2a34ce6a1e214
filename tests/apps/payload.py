"""Deterministic byte patterns shared by the test apps and the tests that check their output."""

_BLOCK = bytes(range(251)) * 64  # a prime period, so chunk boundaries show up in comparisons


def pattern(size, seed=0):
    """`size` bytes of a repeating pattern that depends on `seed`."""
    start = (seed * 7) % 251
    out = bytearray()
    while len(out) < size:
        out += _BLOCK[start:]
        start = 0
    return bytes(out[:size])
