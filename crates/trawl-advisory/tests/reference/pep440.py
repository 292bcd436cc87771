"""Reference side of the PEP 440 differential test: Python's `packaging`.

Reads {"versions": [str], "pairs": [[i, j]]} as JSON on stdin and writes
{"reference": "packaging X", "parsed": [str | {"error": name}],
 "cmp": [-1 | 0 | 1 | null]} on stdout: for each version `str(Version(v))` or the
exception `Version(v)` raised, and for each pair the ordering of the two
versions (null when either does not parse).
"""

import json
import sys

import packaging
from packaging.version import Version


def parse(text):
    try:
        return Version(text)
    except Exception as error:  # InvalidVersion, or ValueError past int()'s digit limit
        return error


def main():
    job = json.load(sys.stdin)
    parsed = [parse(v) for v in job["versions"]]
    out_parsed = [
        {"error": type(p).__name__} if isinstance(p, Exception) else str(p) for p in parsed
    ]
    cmp = []
    for i, j in job["pairs"]:
        a, b = parsed[i], parsed[j]
        if isinstance(a, Exception) or isinstance(b, Exception):
            cmp.append(None)
        else:
            cmp.append((a > b) - (a < b))
    json.dump(
        {"reference": "packaging " + packaging.__version__, "parsed": out_parsed, "cmp": cmp},
        sys.stdout,
    )


main()
