"""Reading the Prometheus text of /metrics in tests: samples by name and labels."""
import re


def samples(text, name):
    """{labels: value} of every sample named `name` (labels as the raw `{...}` text, "" if none)."""
    found = {}
    for line in text.splitlines():
        m = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            found[m.group(1) or ""] = float(m.group(2))
    return found


def total(text, name):
    return sum(samples(text, name).values())


def value(text, name, labels=""):
    return samples(text, name).get(labels, 0.0)
