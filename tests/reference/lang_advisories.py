"""Independent evaluation of OSV advisories against the language test image.

Prints the findings a scanner should report for the language-heavy test image
(scripts/lang-artifacts/build-image.sh) and a directory of OSV records, one
line each, sorted:

    ecosystem<TAB>package<TAB>version<TAB>path<TAB>id<TAB>aliases

then, prefixed with `owned<TAB>`, the findings the same records would give
for the packages an OS package owns, which a scanner must not report: the
distribution backports fixes without changing the upstream version, so its
advisories, not the language's, decide.

It reads nothing of Trawl's: the installed packages are the lists each
ecosystem's own tool printed when the test data was built (expected/*.tsv,
the `go version -m` listings, `rust-audit-info`'s JSON, the archives' unzip
listings), packages whose metadata file an OS package owns
(expected/owners.tsv, from `dpkg -S`) are left to the distribution (listed
apart), and every
version comparison is asked of the ecosystem's own implementation, the
reference programs of crates/trawl-advisory/tests/reference: Python's
`packaging` (PyPI), node's `semver` (npm), golang.org/x/mod/semver with
x/vuln's Go tag mapping (Go), Maven's ComparableVersion (Maven),
Gem::Version (RubyGems) and composer/semver (Packagist).

Matching, as the OSV schema (1.6) defines it: an `affected` entry applies to
an installed package of its ecosystem whose name is the same under the
ecosystem's rules (PEP 503 normalisation for PyPI, case-insensitive for
Packagist and NuGet, exact otherwise); the package is affected when its
version is one of the entry's `versions` (string equality) or falls in one of
its SEMVER or ECOSYSTEM ranges, evaluated by the schema's algorithm: events
sorted by version ("0" first), walked in order, `introduced` opening,
`fixed` closing at the version and `last_affected` after it. GIT ranges
cannot be evaluated without the repository and are ignored; withdrawn
records are skipped. The records that affect one package instance and share
an id (id, alias or upstream) are one finding, named by its CVE when the
group has exactly one, else by the smallest record id; the other ids are its
aliases.

Usage:
    python3 lang_advisories.py ADVISORIES_DIR ARTIFACTS_DIR REFERENCES_DIR WORK_DIR

REFERENCES_DIR is scripts/install-version-references.sh's directory (Python's
`packaging`, node's `semver`); WORK_DIR receives the built Go and Java
references. A reference that is missing for an ecosystem with records is an
error (exit status 2), never a silent pass.
"""

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent.parent / "crates/trawl-advisory/tests/reference"
GOCODE = Path("/usr/share/gocode/src")
MAVEN_JARS = [
    Path("/usr/share/maven/lib/maven-artifact-3.x.jar"),
    Path("/usr/share/java/maven3-artifact.jar"),
    Path("/usr/share/java/maven-artifact.jar"),
]


class Missing(Exception):
    """A reference implementation that is not installed."""


# --- Installed packages, from the ecosystems' own tools ---------------------


def tsv(path):
    return [l.split("\t") for l in path.read_text().splitlines() if l]


def go_version_m(listing):
    """(name, version) of each module `go version -m` listed, replacements
    applied, the toolchain as `stdlib`."""
    lines = listing.read_text().splitlines()
    out = [("stdlib", lines[0].rsplit(": ", 1)[1])]
    for line in lines[1:]:
        cols = line.lstrip("\t").split("\t")
        if cols[0] in ("mod", "dep"):
            out.append((cols[1], cols[2]))
        elif cols[0] == "=>":
            out[-1] = (cols[1], cols[2])
    return out


def installed(artifacts):
    """(ecosystem, name, version, path) of every language package in the
    image, and the set of those whose metadata file an OS package owns."""
    expected = artifacts / "expected"
    owned = {row[0] for row in tsv(expected / "owners.tsv")}
    out = []
    for eco, files in [
        ("PyPI", ["python.tsv"]),
        ("npm", ["npm.tsv", "pnpm.tsv"]),
        ("RubyGems", ["gem.tsv"]),
        ("Packagist", ["composer.tsv"]),
        ("NuGet", ["dotnet.tsv"]),
    ]:
        for f in files:
            out += [(eco, n, v, p) for n, v, p in tsv(expected / f)]
    # Where build-image.sh puts each binary and archive.
    for path, listing in [
        ("usr/local/bin/app", "go/app-go1.19-amd64.expected"),
        ("usr/local/bin/trivy", "go/trivy.expected"),
        ("usr/local/bin/syft", "go/syft.expected"),
    ]:
        out += [("Go", n, v, path) for n, v in go_version_m(artifacts / listing)]
    audit = json.loads((artifacts / "rust/auditable-demo.expected.json").read_text())
    out += [
        ("crates.io", p["name"], p["version"], "usr/local/bin/auditable-demo")
        for p in audit["packages"]
    ]
    for path, listing in [
        ("app/demo-boot.jar", "demo-boot-0.0.1-SNAPSHOT.jar"),
        ("srv/demo-ear-3.2.ear", "demo-ear-3.2.ear"),
    ]:
        for chain, group, artifact, version, _ in tsv(
            artifacts / "java" / f"{listing}.expected.tsv"
        ):
            name = f"{group}:{artifact}" if group else artifact
            location = path + "".join("!/" + s for s in chain.split(" > ") if s)
            out.append(("Maven", name, version, location))
    return out, {p for p in out if p[3] in owned}


def same_name(eco, a, b):
    if eco == "PyPI":
        norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
        return norm(a) == norm(b)
    if eco in ("Packagist", "NuGet"):
        return a.lower() == b.lower()
    return a == b


# --- The references ---------------------------------------------------------


def run(command, stdin, env=None):
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, env=env, check=False
        )
    except FileNotFoundError as e:
        raise Missing(f"{command[0]} is not installed") from e
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode()


def json_reference(command, env):
    """A reference speaking {"versions", "pairs"} -> {"cmp"} (pep440.py,
    npm_semver.js, go_semver.go)."""

    def compare(versions, pairs):
        out = json.loads(
            run(command, json.dumps({"versions": versions, "pairs": pairs}).encode(), env)
        )
        return out["cmp"], out["reference"]

    return compare


def line_reference(command, sign, env=None):
    """A reference speaking the line protocol of tests/support/mod.rs
    (MavenCompare, gem_compare.rb, composer_compare.php)."""

    def compare(versions, pairs):
        text = f"{len(versions)}\n" + "".join(v.encode().hex() + "\n" for v in versions)
        text += "".join(f"{i} {j}\n" for i, j in pairs)
        lines = run(command, text.encode(), env).splitlines()
        parsed, answers = lines[: len(versions)], lines[len(versions) :]
        cmp = []
        for (i, j), answer in zip(pairs, answers):
            ok = parsed[i] != "0" and parsed[j] != "0"
            cmp.append(sign(answer) if ok else None)
        return cmp, " ".join(command[:1])

    return compare


def composer_sign(answer):
    lt, eq, gt = answer.split()
    return -1 if lt == "1" else 0 if eq == "1" else 1 if gt == "1" else None


def build_go(work):
    for p in ["golang.org/x/mod/semver", "golang.org/x/vuln/internal/semver"]:
        if not (GOCODE / p).is_dir():
            raise Missing(f"{GOCODE / p} is not installed")
    src = work / "gopath/src/golang.org/x"
    program = src / "vuln/trawlref"
    program.mkdir(parents=True, exist_ok=True)
    for link, target in [
        (src / "mod", GOCODE / "golang.org/x/mod"),
        (src / "vuln/internal", GOCODE / "golang.org/x/vuln/internal"),
    ]:
        if not link.is_symlink():
            link.symlink_to(target)
    (program / "main.go").write_text((REFERENCE / "go_semver.go").read_text())
    binary = work / "go-semver-reference"
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=str(work / "gopath"),
        GOCACHE=str(work / "gocache"),
        GOFLAGS="",
        GOPROXY="off",
        GOTOOLCHAIN="local",
    )
    run(["go", "build", "-o", str(binary), "golang.org/x/vuln/trawlref"], b"", env)
    return binary, run(["go", "version"], b"", env).strip()


def build_maven(work):
    jar = next((j for j in MAVEN_JARS if j.is_file()), None)
    if jar is None:
        raise Missing("Maven's maven-artifact jar is not installed (libmaven3-core-java)")
    classes = work / "maven-classes"
    classes.mkdir(parents=True, exist_ok=True)
    run(["javac", "-cp", str(jar), "-d", str(classes), str(REFERENCE / "MavenCompare.java")], b"")
    return ["java", "-cp", f"{classes}:{jar}", "MavenCompare"]


def reference(eco, references, work):
    if eco == "PyPI":
        env = dict(os.environ, PYTHONPATH=str(references / "python"))
        return json_reference([sys.executable, str(REFERENCE / "pep440.py")], env)
    if eco == "npm":
        env = dict(os.environ, NODE_PATH=str(references / "node/node_modules"))
        return json_reference(["node", str(REFERENCE / "npm_semver.js")], env)
    if eco == "Go":
        binary, version = build_go(work)
        return json_reference([str(binary)], dict(os.environ, TRAWL_GO_REFERENCE=version))
    if eco == "Maven":
        return line_reference(build_maven(work), lambda a: int(a.split()[0]))
    if eco == "RubyGems":
        return line_reference(["ruby", str(REFERENCE / "gem_compare.rb")], int)
    if eco == "Packagist":
        return line_reference(["php", str(REFERENCE / "composer_compare.php")], composer_sign)
    raise Missing(f"no reference implementation for {eco} here")


# --- OSV evaluation ---------------------------------------------------------


def load_records(directory):
    records = []
    for path in sorted(Path(directory).rglob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if not record.get("withdrawn"):
            records.append(record)
    return records


def event_version(event):
    for kind in ("introduced", "fixed", "last_affected"):
        if kind in event:
            return kind, event[kind]
    return None, None


def evaluate(records, packages, references, work):
    """{(eco, name, version, path): [record]} of the matching records."""
    # Which (package, affected entry) pairs to evaluate, per ecosystem.
    todo = {}
    for record in records:
        for affected in record.get("affected", []):
            pkg = affected.get("package") or {}
            eco = pkg.get("ecosystem", "").split(":")[0]
            for p in packages:
                if p[0] == eco and same_name(eco, pkg.get("name", ""), p[1]):
                    todo.setdefault(eco, []).append((p, record, affected))

    hits = {}
    notes = []
    for eco, jobs in sorted(todo.items()):
        versions = sorted(
            {p[2] for p, _, _ in jobs}
            | {
                event_version(e)[1]
                for _, _, a in jobs
                for r in a.get("ranges", [])
                if r.get("type") in ("SEMVER", "ECOSYSTEM")
                for e in r.get("events", [])
                if event_version(e)[1] not in (None, "0")
            }
        )
        index = {v: i for i, v in enumerate(versions)}
        pairs = [[i, j] for i in range(len(versions)) for j in range(len(versions)) if i < j]
        compare = reference(eco, references, work)
        answers, name = compare(versions, pairs)
        table = {}
        for (i, j), c in zip(pairs, answers):
            table[(i, j)] = c
            table[(j, i)] = None if c is None else -c

        def cmp(a, b):
            if a == b:
                return 0
            return table[(index[a], index[b])]

        notes.append(f"{eco}: {len(versions)} versions, {len(pairs)} pairs asked of {name}")
        for p, record, affected in jobs:
            version = p[2]
            hit = version in affected.get("versions", [])
            for r in affected.get("ranges", []):
                if r.get("type") not in ("SEMVER", "ECOSYSTEM") or hit:
                    continue
                hit = in_range(version, r.get("events", []), cmp, notes, record["id"])
            if hit:
                hits.setdefault(p, []).append(record)
    return hits, notes


def in_range(version, events, cmp, notes, rid):
    """The OSV schema's evaluation of one SEMVER/ECOSYSTEM range."""

    def order(a, b):
        (_, x), (_, y) = event_version(a), event_version(b)
        if x == y:
            return 0
        if x == "0":
            return -1
        if y == "0":
            return 1
        c = cmp(x, y)
        return 0 if c is None else c

    events = [e for e in events if event_version(e)[0]]
    for e in events:
        v = event_version(e)[1]
        if v != "0" and cmp(version, v) is None:
            notes.append(f"{rid}: {version!r} or {v!r} does not parse; range skipped")
            return False
    affected = False
    for e in sorted(events, key=functools.cmp_to_key(order)):
        kind, v = event_version(e)
        if kind == "introduced" and (v == "0" or cmp(version, v) >= 0):
            affected = True
        elif kind == "fixed" and cmp(version, v) >= 0:
            affected = False
        elif kind == "last_affected" and cmp(version, v) > 0:
            affected = False
    return affected


def findings(hits):
    lines = []
    for p, records in hits.items():
        groups = []  # [(ids, [record])]
        for record in records:
            ids = {record["id"], *record.get("aliases", []), *record.get("upstream", [])}
            members = [record]
            for g in [g for g in groups if g[0] & ids]:
                groups.remove(g)
                ids |= g[0]
                members += g[1]
            groups.append((ids, members))
        for ids, members in groups:
            cves = sorted(i for i in ids if i.startswith("CVE-"))
            name = cves[0] if len(cves) == 1 else min(r["id"] for r in members)
            aliases = ",".join(sorted(ids - {name}))
            lines.append("\t".join([*p, name, aliases]))
    return sorted(lines)


def main(argv):
    if len(argv) != 5:
        sys.exit(__doc__)
    advisories, artifacts, references, work = map(Path, argv[1:])
    work.mkdir(parents=True, exist_ok=True)
    try:
        packages, owned = installed(artifacts)
        hits, notes = evaluate(load_records(advisories), packages, references, work)
    except Missing as e:
        print(f"lang_advisories.py: {e}", file=sys.stderr)
        sys.exit(2)
    for note in notes:
        print(note, file=sys.stderr)
    for line in findings({p: r for p, r in hits.items() if p not in owned}):
        print(line)
    for line in findings({p: r for p, r in hits.items() if p in owned}):
        print("owned\t" + line)


if __name__ == "__main__":
    main(sys.argv)
