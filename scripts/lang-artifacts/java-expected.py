#!/usr/bin/env python3
"""The Java artifacts of an archive, from Info-ZIP's `unzip` (the ground truth
the Java cataloger is tested against).

Usage: java-expected.py ARCHIVE > ARCHIVE.expected.tsv

Every `META-INF/maven/<group>/<artifact>/pom.properties` that `unzip -p`
prints, in every archive nested inside (each extracted with `unzip -p` to a
temporary file), is one row; an archive none of whose pom.properties is the
archive itself (by the rule in crates/trawl-inventory/src/java/mod.rs: the
artifactId is the file name's or the manifest's name, or the only pom's
version equals the manifest's or the file name's) gets one more row from its
manifest (Implementation-Title/-Version, else Bundle-SymbolicName/-Version,
Implementation-Vendor-Id as group), else from its file name `name-1.2.jar`.

Rows: `chain<TAB>group<TAB>artifact<TAB>version<TAB>evidence`, the chain being
the nested entry names joined by ` > ` (empty for the archive itself), in the
order: this archive's rows, then each nested archive's, in `unzip -Z1` order.
"""
import os
import re
import subprocess
import sys
import tempfile

ARCHIVE = re.compile(r"\.(jar|war|ear|par|jpi|hpi)$", re.IGNORECASE)
POM = re.compile(r"(^|/)META-INF/maven/[^/]+/[^/]+/pom\.properties$")


def unzip(*args):
    # Exit status 1 is a warning (a launch script before the zip).
    p = subprocess.run(["unzip", *args], capture_output=True)
    if p.returncode > 1:
        raise SystemExit(f"unzip {args}: {p.stderr.decode()}")
    return p.stdout


def literal(name):
    # unzip takes wildcards; escape them.
    return re.sub(r"([\[\]*?])", r"\\\1", name)


def properties(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def manifest(text):
    attrs, last = {}, None
    for line in re.split(r"\r\n|\n|\r", text):
        if not line:
            if attrs:
                break
            continue
        if line.startswith(" "):
            if last:
                attrs[last] += line[1:]
            continue
        if ":" in line:
            k, v = line.split(":", 1)
            last = k.strip().lower()
            attrs.setdefault(last, v[1:] if v.startswith(" ") else v)
    get = lambda k: (attrs.get(k) or "").strip() or None
    name = get("implementation-title")
    if not name and get("bundle-symbolicname"):
        name = get("bundle-symbolicname").split(";")[0].strip() or None
    version = get("implementation-version") or get("bundle-version")
    return get("implementation-vendor-id"), name, version


def file_name(name):
    stem = os.path.basename(name).rsplit(".", 1)[0]
    m = re.search(r"(?<=.)-(?=\d)", stem)
    return (stem[: m.start()], stem[m.end():]) if m else (stem, None)


def osgi(v):
    parts = re.split(r"[.\-_]", v or "")
    while parts and parts[-1] == "0":
        parts.pop()
    return parts


def walk(path, name, chain, rows):
    names = unzip("-Z1", path).decode("utf-8", "replace").splitlines()
    poms, seen = [], set()
    for n in names:
        if POM.search(n):
            p = properties(unzip("-p", path, literal(n)).decode("utf-8", "replace"))
            key = (p.get("groupId", ""), p.get("artifactId", ""), p.get("version", ""))
            if key[1] and key[2] and key not in seen:
                seen.add(key)
                poms.append(key)
    for g, a, v in poms:
        rows.append((chain, g, a, v, "pom.properties"))
    m_group = m_name = m_version = None
    if "META-INF/MANIFEST.MF" in names:
        m_group, m_name, m_version = manifest(
            unzip("-p", path, "META-INF/MANIFEST.MF").decode("utf-8", "replace"))
    f_name, f_version = file_name(name)
    own = any(
        a == f_name or a == m_name
        or (len(poms) == 1 and m_version is not None and osgi(v) == osgi(m_version))
        or (len(poms) == 1 and f_version is not None and osgi(v) == osgi(f_version))
        for _, a, v in poms)
    if not own:
        if m_name and m_version:
            rows.append((chain, m_group or "", m_name, m_version, "MANIFEST.MF"))
        elif f_version:
            rows.append((chain, "", f_name, f_version, "file-name"))
    for n in names:
        if ARCHIVE.search(n) and not n.endswith("/"):
            with tempfile.NamedTemporaryFile(suffix=".jar") as tmp:
                tmp.write(unzip("-p", path, literal(n)))
                tmp.flush()
                walk(tmp.name, n, chain + [n], rows)


def main():
    rows = []
    walk(sys.argv[1], sys.argv[1], [], rows)
    for chain, g, a, v, ev in rows:
        print("\t".join([" > ".join(chain), g, a, v, ev]))


main()
