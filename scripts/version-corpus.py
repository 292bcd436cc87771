#!/usr/bin/env python3
"""Builds the real-version corpora of the version-scheme differential tests.

Writes crates/trawl-advisory/tests/fixtures/versions/{pypi,npm,go,crates}.txt:
one version per line as its registry publishes it, a sample that keeps every
shape of version seen (digits collapsed) and fills up with a seeded random draw.

Sources:
  pypi    the newest version of every PyPI project (a package list, column 2)
          and `pip index versions` of a few projects with long histories
  npm     the newest version of every npm package (a package list, column 2)
          and `npm view NAME versions --json` of a few packages with many
          pre-releases
  go      module versions, pseudo-versions included, from a Go module list
          (columns 2 and 3)
  crates  every version of every crate in cargo's local registry index cache
          (the crates this workspace builds on)

Usage: scripts/version-corpus.py PACKAGE_LIST_DIR
PACKAGE_LIST_DIR holds pypi.tsv, npm.tsv and go-partial.tsv (name, newest
version, ...; the first line names the columns).
"""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

SIZE = {"pypi": 6000, "npm": 5000, "go": 3000, "crates": 3000}
PIP_PROJECTS = ["setuptools", "numpy", "django", "pip", "cryptography", "pytz", "tensorflow"]
NPM_PACKAGES = ["typescript", "react", "next", "@angular/core", "webpack", "esbuild", "electron"]

OUT = Path(__file__).resolve().parent.parent / "crates/trawl-advisory/tests/fixtures/versions"


def column(path, *indices):
    out = set()
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            fields = line.rstrip("\n").split("\t")
            for i in indices:
                if i < len(fields):
                    out.update(fields[i].split(" ") if i > 1 else [fields[i]])
    out.discard("")
    return out


def pip_versions(project):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", project],
        capture_output=True, text=True, check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Available versions:"):
            return {v.strip() for v in line.split(":", 1)[1].split(",")}
    return set()


def npm_versions(package):
    result = subprocess.run(
        ["npm", "view", package, "versions", "--json"], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout))


def cargo_index_versions():
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    out = set()
    for path in (home / "registry/index").glob("*/.cache/**/*"):
        if path.is_file():
            out.update(
                m.group(1).decode() for m in re.finditer(rb'"vers": ?"([^"]*)"', path.read_bytes())
            )
    return out


def sample(versions, size, seed):
    """Every shape once, then a random draw up to `size`."""
    versions = sorted(versions)
    shapes = {}
    for v in versions:
        shapes.setdefault(re.sub(r"[0-9]+", "9", v), v)
    chosen = set(shapes.values())
    rest = [v for v in versions if v not in chosen]
    random.Random(seed).shuffle(rest)
    chosen.update(rest[: max(0, size - len(chosen))])
    return sorted(chosen)


def write(name, source, versions):
    OUT.mkdir(parents=True, exist_ok=True)
    versions = sample(versions, SIZE[name], name)
    with open(OUT / f"{name}.txt", "w", encoding="utf-8") as f:
        f.write(f"# {len(versions)} real versions from {source}; made by scripts/version-corpus.py\n")
        for v in versions:
            f.write(v + "\n")
    print(f"{name}: {len(versions)} versions", file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    lists = Path(sys.argv[1])
    pypi = column(lists / "pypi.tsv", 1)
    for project in PIP_PROJECTS:
        pypi |= pip_versions(project)
    write("pypi", "PyPI (newest version of each project; pip index versions of "
          + ", ".join(PIP_PROJECTS) + ")", pypi)
    npm = column(lists / "npm.tsv", 1)
    for package in NPM_PACKAGES:
        npm |= npm_versions(package)
    write("npm", "the npm registry (newest version of each package; npm view versions of "
          + ", ".join(NPM_PACKAGES) + ")", npm)
    go = {v for v in column(lists / "go-partial.tsv", 1, 2) if re.fullmatch(r"v[0-9][0-9A-Za-z.+-]*", v)}
    write("go", "the Go module proxy (module versions and pseudo-versions)", go)
    write("crates", "crates.io (cargo's registry index cache)", cargo_index_versions())


main()
