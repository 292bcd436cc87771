#!/usr/bin/env bash
# Build the binaries and archives the Go, Rust and Java catalogers are tested
# on, with the ecosystems' own tools, and record each tool's own listing of
# them as the expected result.
#
# Usage: scripts/lang-artifacts/build-binaries.sh OUT_DIR
#
# Idempotent: each part is built once (OUT_DIR/<part>/.done) and kept. Needs
# network access to Debian's archive and crates.io on the first run only.
#
# OUT_DIR/go/
#   app-go1.19-<arch>        a module built by Debian's Go 1.19 (inline build
#                            info) for amd64, 386, arm64, ppc64 (big-endian),
#                            mips (32-bit big-endian), s390x
#   app-go1.15-<arch>        the same module built by Debian bullseye's Go 1.15
#                            (pointer build info) for amd64, 386, s390x, mips
#   go1.15-gofmt             bullseye's own gofmt binary (pointer format, no
#                            module info: built in the Go tree)
#   *.expected               `go version -m` of each (Debian's go reads both)
#   The module has a dependency (example.com/quote v1.2.3), a module replaced
#   by another (example.com/old v1.0.0 => example.com/new v1.1.0) and one
#   replaced by a local directory (example.com/greet => ./greet), served by a
#   GOPROXY=file:// directory this script writes, so nothing is fetched.
# OUT_DIR/rust/
#   auditable-demo           a crate with crates.io dependencies and a build
#                            dependency, built by `cargo auditable build`
#   auditable-demo.expected.json   `rust-audit-info` of it (the reference reader)
#   Tools (cargo-auditable, rust-audit-info) are installed by `cargo install
#   --locked` into OUT_DIR/tools.
# OUT_DIR/java/
#   Debian's jars (commons-lang3, slf4j-api, guava, ...), a Spring Boot layout
#   fat jar (stored BOOT-INF/lib/*.jar), a war (deflated WEB-INF/lib/*.jar), an
#   ear holding a jar and the war, and a shaded jar carrying another
#   artifact's pom.properties, all made by the JDK's `jar` tool.
#   *.expected.tsv           per archive: entry chain, group, artifact,
#                            version, evidence — from `unzip -p` of every
#                            pom.properties and MANIFEST.MF (see java_expected).
set -euo pipefail

OUT=${1:?usage: build-binaries.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
log() { echo "build-binaries: $*" >&2; }
# Test binaries run in parallel; one builds, the others wait.
exec 9>"$OUT/.lock"
flock 9

# ---------------------------------------------------------------- Go
go_module() { # DIR: the test module and its file:// module proxy
    local dir=$1
    rm -rf "$dir" && mkdir -p "$dir/app/greet" "$dir/proxy"
    cat >"$dir/app/go.mod" <<'EOF'
module example.com/app

go 1.15

require (
	example.com/greet v0.0.0
	example.com/old v1.0.0
	example.com/quote v1.2.3
)

replace example.com/greet => ./greet

replace example.com/old v1.0.0 => example.com/new v1.1.0
EOF
    cat >"$dir/app/main.go" <<'EOF'
package main

import (
	"fmt"

	"example.com/greet"
	"example.com/old"
	"example.com/quote"
)

func main() { fmt.Println(greet.Hello(), quote.Quote(), old.Name()) }
EOF
    cat >"$dir/app/greet/go.mod" <<'EOF'
module example.com/greet

go 1.15
EOF
    cat >"$dir/app/greet/greet.go" <<'EOF'
package greet

func Hello() string { return "hello" }
EOF
    # Modules in the proxy: path, version, package name, function body.
    python3 - "$dir/proxy" <<'PY'
import json, os, sys, zipfile
proxy = sys.argv[1]
mods = [
    ("example.com/quote", "v1.2.3", "quote", 'func Quote() string { return "quote" }'),
    ("example.com/old", "v1.0.0", "old", 'func Name() string { return "old" }'),
    ("example.com/new", "v1.1.0", "old", 'func Name() string { return "new" }'),
]
for path, version, pkg, body in mods:
    d = os.path.join(proxy, path, "@v")
    os.makedirs(d, exist_ok=True)
    # A replacement keeps the replaced module's import path in its code, but
    # its go.mod names itself.
    gomod = f"module {path}\n\ngo 1.15\n"
    with open(os.path.join(d, version + ".mod"), "w") as f:
        f.write(gomod)
    with open(os.path.join(d, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": "2020-01-01T00:00:00Z"}, f)
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w") as z:
        z.writestr(f"{path}@{version}/go.mod", gomod)
        z.writestr(f"{path}@{version}/{pkg}.go", f"package {pkg}\n\n{body}\n")
    with open(os.path.join(d, "list"), "a") as f:
        f.write(version + "\n")
PY
}

go_build() { # GO_BINARY NAME: build the module for several GOARCH values
    local gobin=$1 name=$2; shift 2
    local arch
    for arch in "$@"; do
        (
            cd "$OUT/go/module/app"
            GOOS=linux GOARCH=$arch CGO_ENABLED=0 GOFLAGS=-mod=mod GO111MODULE=on \
                GOPROXY="file://$OUT/go/module/proxy" GOSUMDB=off GONOSUMDB='*' \
                GOPATH="$OUT/go/gopath" GOCACHE="$OUT/go/gocache" \
                "$gobin" build -o "$OUT/go/$name-$arch" .
        )
    done
}

build_go() {
    [[ -f $OUT/go/.done ]] && return
    log "Go binaries"
    command -v go >/dev/null || { log "needs Debian's golang-go"; exit 1; }
    mkdir -p "$OUT/go"
    go_module "$OUT/go/module"
    go_build "$(command -v go)" app-go1.19 amd64 386 arm64 ppc64 mips s390x

    # Go 1.15 from Debian bullseye (pointer-format build info), unpacked
    # into OUT_DIR, never installed.
    local bw=$OUT/go/bullseye
    if [[ ! -x $bw/root/usr/lib/go-1.15/bin/go ]]; then
        rm -rf "$bw" && mkdir -p "$bw/state/lists/partial" "$bw/cache/archives/partial" "$bw/debs"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-bullseye-stable.gpg] http://deb.debian.org/debian bullseye main" >"$bw/sources.list"
        local apt=(-q -o Dir::Etc::SourceList="$bw/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o Dir::State="$bw/state" -o Dir::Cache="$bw/cache" -o Dir::State::status=/dev/null
            -o APT::Sandbox::User=root)
        apt-get "${apt[@]}" update >&2
        (cd "$bw/debs" && apt-get "${apt[@]}" download golang-1.15-go golang-1.15-src >&2)
        for deb in "$bw"/debs/*.deb; do dpkg-deb -x "$deb" "$bw/root"; done
        rm -rf "$bw/state" "$bw/cache" "$bw/debs"
    fi
    local goroot=$bw/root/usr/lib/go-1.15
    GOROOT=$goroot go_build "$goroot/bin/go" app-go1.15 amd64 386 s390x mips
    cp "$goroot/bin/gofmt" "$OUT/go/go1.15-gofmt"

    local bin
    for bin in "$OUT"/go/app-go1.* "$OUT/go/go1.15-gofmt"; do
        go version -m "$bin" >"$bin.expected"
    done
    touch "$OUT/go/.done"
}

# `go version -m` of the peer scanners (large real Go binaries), when
# scripts/peer-scanners.sh has fetched them.
expect_peers() {
    local dir=${CARGO_TARGET_DIR:-$ROOT/target}/peers/bin bin
    for bin in trivy syft; do
        if [[ -x $dir/$bin && ! -f $OUT/go/$bin.expected ]]; then
            go version -m "$dir/$bin" >"$OUT/go/$bin.expected"
        fi
    done
}

# ---------------------------------------------------------------- Rust
build_rust() {
    [[ -f $OUT/rust/.done ]] && return
    log "Rust binary (cargo auditable)"
    local tools=$OUT/tools
    if [[ ! -x $tools/bin/cargo-auditable ]]; then
        cargo install --locked --quiet cargo-auditable --root "$tools" >&2
    fi
    if [[ ! -x $tools/bin/rust-audit-info ]]; then
        cargo install --locked --quiet rust-audit-info --root "$tools" >&2
    fi
    local src=$OUT/rust/crate
    rm -rf "$src" && mkdir -p "$src/src"
    cat >"$src/Cargo.toml" <<'EOF'
[package]
name = "auditable-demo"
version = "0.3.1"
edition = "2021"
build = "build.rs"

[dependencies]
itoa = "1"
memchr = "2"

[build-dependencies]
autocfg = "1"

[workspace]
EOF
    cat >"$src/build.rs" <<'EOF'
fn main() {
    autocfg::new().emit_rustc_version(1, 60);
}
EOF
    cat >"$src/src/main.rs" <<'EOF'
fn main() {
    let mut buf = itoa::Buffer::new();
    let n = buf.format(42);
    println!("{} {:?}", n, memchr::memchr(b'2', n.as_bytes()));
}
EOF
    (
        cd "$src"
        PATH="$tools/bin:$PATH" CARGO_TARGET_DIR="$OUT/rust/target" cargo auditable build --quiet >&2
    )
    cp "$OUT/rust/target/debug/auditable-demo" "$OUT/rust/auditable-demo"
    "$tools/bin/rust-audit-info" "$OUT/rust/auditable-demo" >"$OUT/rust/auditable-demo.expected.json"
    rm -rf "$OUT/rust/target"
    touch "$OUT/rust/.done"
}

# ---------------------------------------------------------------- Java
# Debian's jars (regular files; the versioned names are symlinks to them).
DEBIAN_JARS=(commons-lang3.jar slf4j-api.jar guava.jar commons-cli.jar jansi.jar
    jsr305-0.1~+svn49.jar aopalliance-1.0.jar atinject-jsr330-api-1.0.jar
    geronimo-annotation-1.3-spec.jar)

build_java() {
    [[ -f $OUT/java/.done ]] && return
    log "Java archives"
    local j=$OUT/java w=$OUT/java/work jar
    for tool in jar javac unzip; do
        command -v $tool >/dev/null || { log "needs $tool (openjdk-17-jdk-headless, unzip)"; exit 1; }
    done
    rm -rf "$j" && mkdir -p "$j" "$w"
    for jar in "${DEBIAN_JARS[@]}"; do
        [[ -f /usr/share/java/$jar ]] || { log "missing /usr/share/java/$jar (Debian's Java packages)"; exit 1; }
        cp "/usr/share/java/$jar" "$j/$jar"
    done

    # The application's own classes and Maven metadata (what Maven writes).
    mkdir -p "$w/src/com/example"
    cat >"$w/src/com/example/Demo.java" <<'EOF'
package com.example;

public class Demo {
    public static void main(String[] args) { System.out.println("demo"); }
}
EOF
    javac -d "$w/classes" "$w/src/com/example/Demo.java"
    pom() { # DIR GROUP ARTIFACT VERSION
        mkdir -p "$1/META-INF/maven/$2/$3"
        printf '#Created by Apache Maven 3.8.7\ngroupId=%s\nartifactId=%s\nversion=%s\n' "$2" "$3" "$4" \
            >"$1/META-INF/maven/$2/$3/pom.properties"
    }

    # Spring Boot layout: BOOT-INF/classes, BOOT-INF/lib/*.jar stored (-0).
    local boot=$w/boot
    mkdir -p "$boot/BOOT-INF/lib"
    cp -r "$w/classes" "$boot/BOOT-INF/classes"
    cp /usr/share/java/commons-lang3-3.12.0.jar /usr/share/java/slf4j-api-1.7.32.jar \
        /usr/share/java/guava-31.1-jre.jar /usr/share/java/jsr305-0.1~+svn49.jar "$boot/BOOT-INF/lib/"
    pom "$boot" com.example demo-boot 0.0.1-SNAPSHOT
    printf 'Main-Class: org.springframework.boot.loader.JarLauncher\nStart-Class: com.example.Demo\nImplementation-Title: demo-boot\nImplementation-Version: 0.0.1-SNAPSHOT\n' >"$w/boot.mf"
    jar --create --no-compress --file "$j/demo-boot-0.0.1-SNAPSHOT.jar" --manifest "$w/boot.mf" -C "$boot" .
    # The same as a "fully executable" jar: a launch script before the zip.
    { printf '#!/bin/bash\n# launch script\nexec java -jar "$0" "$@"\n'; cat "$j/demo-boot-0.0.1-SNAPSHOT.jar"; } >"$j/demo-boot-exec.jar"

    # A war: WEB-INF/lib/*.jar deflated.
    local war=$w/war
    mkdir -p "$war/WEB-INF/lib"
    cp -r "$w/classes" "$war/WEB-INF/classes"
    cp /usr/share/java/commons-cli-1.5.0.jar /usr/share/java/aopalliance-1.0.jar \
        /usr/share/java/atinject-jsr330-api-1.0.jar "$war/WEB-INF/lib/"
    pom "$war" com.example demo-web 1.4.0
    jar --create --file "$j/demo-web.war" -C "$war" .

    # An ear: lib/*.jar and the war (nested two deep), no Maven metadata.
    local ear=$w/ear
    mkdir -p "$ear/lib" "$ear/META-INF"
    cp /usr/share/java/jansi-2.4.0.jar "$ear/lib/"
    cp "$j/demo-web.war" "$ear/"
    printf '<application><module><web><web-uri>demo-web.war</web-uri></web></module></application>\n' \
        >"$ear/META-INF/application.xml"
    jar --create --file "$j/demo-ear-3.2.ear" -C "$ear" .

    # A shaded jar: slf4j-api's classes and pom.properties inside an
    # application that has no pom.properties of its own.
    local shaded=$w/shaded
    mkdir -p "$shaded"
    (cd "$shaded" && unzip -q /usr/share/java/slf4j-api.jar -x META-INF/MANIFEST.MF)
    cp -r "$w/classes/." "$shaded/"
    printf 'Implementation-Title: shaded-app\nImplementation-Version: 2.0.0\nImplementation-Vendor-Id: com.example\n' >"$w/shaded.mf"
    jar --create --file "$j/shaded-app.jar" --manifest "$w/shaded.mf" -C "$shaded" .

    rm -rf "$w"
    for jar in "$j"/*.jar "$j"/*.war "$j"/*.ear; do
        python3 "$ROOT/scripts/lang-artifacts/java-expected.py" "$jar" >"$jar.expected.tsv"
    done
    touch "$j/.done"
}

build_go
expect_peers
build_rust
build_java
log "done: $OUT"
