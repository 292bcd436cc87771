#!/usr/bin/env bash
# Build language-package test data from real tools, as an application image
# would hold it, with the ecosystem tools' own lists of what is installed.
#
# Usage: scripts/lang-artifacts/build-packages.sh OUT_DIR
#
# Produces (OUT_DIR/.complete once fully built; idempotent, fast when done):
#   OUT_DIR/rootfs/                                a root file system tree:
#     usr/local/lib/python3.11/site-packages/      pip install --target (dist-info),
#                                                    distutils' egg-info file, setuptools'
#                                                    egg-info directory, pythonnet's
#                                                    Python.Runtime.deps.json
#     usr/lib/python3/dist-packages/               Debian python3-* packages (egg-info and
#                                                    dist-info), unpacked by dpkg
#     usr/share/rubygems-integration/..., usr/lib/ruby/gems/3.1.0/specifications/default/
#                                                  Debian ruby-* and libruby3.1 gemspecs, by dpkg
#     usr/local/bundle/specifications/             copies of those gemspecs, owned by no package
#     var/lib/dpkg/{status,info/*.list}            dpkg's own records of the unpacked packages
#     app/node_modules/                            npm install (nested and scoped packages)
#     srv/pnpm/node_modules/                       pnpm install (.pnpm virtual store, symlinks)
#     var/www/vendor/composer/installed.json       composer install (Composer 2 layout)
#     var/www-v1/vendor/composer/installed.json    the same packages in the Composer 1 layout
#   OUT_DIR/expected/<format>.tsv                  name<TAB>version<TAB>metadata path (relative
#                                                    to the rootfs), from the tools:
#     python.tsv    importlib.metadata.distributions(path=[site dir]) for each site dir
#     npm.tsv       npm ls --all --json --long (every node's path)
#     pnpm.tsv      pnpm ls --recursive --depth Infinity --json (real paths)
#     gem.tsv       Gem::Specification.load of every gemspec
#     composer.tsv  composer show --format=json (v2 and v1 directories)
#     dotnet.tsv    the libraries of type "package" of each *.deps.json (Python's json)
#     owners.tsv    path<TAB>OS package, from dpkg --root=rootfs -S, for every metadata file
#
# Needs network access to PyPI, the npm registry and the Debian archive, and:
# python3 (Debian's, with pip), npm/npx, ruby, composer, dpkg, apt-get.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
OUT=$1
[[ -e $OUT/.complete ]] && exit 0
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>"$OUT/.lock"
flock -x 9
[[ -e $OUT/.complete ]] && exit 0

log() { echo "lang-artifacts: $*" >&2; }
PY=/usr/bin/python3
for tool in $PY npm npx ruby composer dpkg dpkg-deb apt-get flock; do
    command -v "$tool" >/dev/null || { log "$tool not found"; exit 1; }
done

rm -rf "$OUT/rootfs" "$OUT/expected"
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf --one-file-system "$WORK"' EXIT
R=$OUT/rootfs
E=$OUT/expected
mkdir -p "$R" "$E"

# --- Debian packages, unpacked by dpkg into the rootfs -----------------------
# dpkg --unpack records the files of each package in var/lib/dpkg/info/<pkg>.list
# exactly as on an installed system (no maintainer scripts need to run: these
# packages have no preinst).
DEBS=(python3-urllib3 python3-six python3-certifi python3-idna python3-requests
      python3-chardet python3-yaml python3-distro-info
      ruby-rack ruby-tilt ruby-mustermann ruby-sinatra ruby-json libruby3.1)
mkdir -p "$WORK/debs" "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
log "downloading ${#DEBS[@]} Debian packages"
(cd "$WORK/debs" && apt-get download -q "${DEBS[@]}" >&2)
dpkg --root="$R" --force-depends --force-not-root --unpack "$WORK"/debs/*.deb >&2
rm -f "$R"/var/lib/dpkg/*-old

# --- Python: pip from PyPI ---------------------------------------------------
SITE=usr/local/lib/python3.11/site-packages
mkdir -p "$R/$SITE"
log "pip install --target $SITE"
$PY -m pip install -q --disable-pip-version-check --no-compile --only-binary=:all: \
    --target "$R/$SITE" \
    requests==2.31.0 Jinja2==3.1.2 PyYAML==6.0.1 zope.interface==6.0 \
    ruamel.yaml==0.17.32 typing_extensions==4.7.1 python-dateutil==2.8.2 \
    attrs==23.1.0 packaging==23.1 pythonnet==3.0.3 >&2
# egg-info as distutils' and setuptools' install_egg_info write it: a file
# (the standard library's distutils) and a directory holding PKG-INFO.
for tool in stdlib:Hello_World.Legacy:1.0.post1 local:Legacy.Egg_Dir:2.0; do
    IFS=: read -r distutils name version <<<"$tool"
    mkdir -p "$WORK/egg-$distutils"
    printf 'from distutils.core import setup\nsetup(name="%s", version="%s", py_modules=[])\n' \
        "$name" "$version" >"$WORK/egg-$distutils/setup.py"
    (cd "$WORK/egg-$distutils" && SETUPTOOLS_USE_DISTUTILS=$distutils PYTHONWARNINGS=ignore \
        $PY setup.py -q install_egg_info --install-dir "$R/$SITE" >&2)
done

$PY - "$R" "$SITE" usr/lib/python3/dist-packages >"$E/python.tsv" <<'EOF'
import importlib.metadata as md, os, sys
root = sys.argv[1]
for site in sys.argv[2:]:
    for d in md.distributions(path=[os.path.join(root, site)]):
        p = str(d._path)
        if not os.path.isfile(p):
            p = os.path.join(p, "METADATA" if p.endswith(".dist-info") else "PKG-INFO")
        print(f"{d.metadata['Name']}\t{d.version}\t{os.path.relpath(p, root)}")
EOF

# --- .NET: the deps.json pythonnet ships --------------------------------------
find "$R" -name '*.deps.json' -type f | sort | $PY -c '
import json, os, sys
root = sys.argv[1]
for path in sys.stdin.read().split():
    with open(path) as f:
        libs = json.load(f)["libraries"]
    for key, lib in libs.items():
        if lib.get("type") == "package":
            name, version = key.split("/", 1)
            print(f"{name}\t{version}\t{os.path.relpath(path, root)}")
' "$R" >"$E/dotnet.tsv"

# --- npm ------------------------------------------------------------------------
NPM_FLAGS=(--no-audit --no-fund --ignore-scripts --loglevel=error)
mkdir -p "$R/app"
(cd "$R/app" && echo '{"name": "app", "version": "1.0.0", "private": true}' >package.json &&
    log "npm install in /app" &&
    npm install "${NPM_FLAGS[@]}" express@4.18.2 debug@2.6.9 ms@2.1.3 \
        @babel/code-frame@7.22.13 @types/node@20.8.0 semver@7.5.4 >&2 &&
    npm ls --all --json --long >"$WORK/npm-ls.json")
$PY - "$R" "$WORK/npm-ls.json" >"$E/npm.tsv" <<'EOF'
import json, os, sys
root, ls = sys.argv[1], json.load(open(sys.argv[2]))
seen = {}
def walk(node):
    for dep in node.get("dependencies", {}).values():
        if "path" in dep and "version" in dep:
            seen[dep["path"]] = (dep["name"], dep["version"])
        walk(dep)
walk(ls)
for path, (name, version) in sorted(seen.items()):
    print(f"{name}\t{version}\t{os.path.relpath(path, root)}/package.json")
EOF

mkdir -p "$R/srv/pnpm"
(cd "$R/srv/pnpm" &&
    cat >package.json <<'EOF'
{"name": "pnpm-app", "version": "1.0.0", "private": true,
 "dependencies": {"debug": "2.6.9", "ms": "2.1.3", "@babel/code-frame": "7.22.13", "semver": "7.5.4"}}
EOF
    log "pnpm install in /srv/pnpm" &&
    npx --yes pnpm@8.15.9 install --ignore-scripts --reporter=silent >&2 &&
    npx --yes pnpm@8.15.9 ls --depth Infinity --json >"$WORK/pnpm-ls.json")
$PY - "$R" "$WORK/pnpm-ls.json" >"$E/pnpm.tsv" <<'EOF'
import json, os, sys
root, ls = sys.argv[1], json.load(open(sys.argv[2]))
seen = {}
def walk(deps):
    for name, dep in (deps or {}).items():
        path = os.path.realpath(dep["path"])
        seen[path] = (dep.get("from", name), dep["version"])
        walk(dep.get("dependencies"))
for project in ls:
    walk(project.get("dependencies"))
    walk(project.get("devDependencies"))
for path, (name, version) in sorted(seen.items()):
    print(f"{name}\t{version}\t{os.path.relpath(path, root)}/package.json")
EOF

# --- Ruby: Debian's gemspecs, and copies where a bundle keeps them -------------
mkdir -p "$R/usr/local/bundle/specifications"
cp "$R"/usr/share/rubygems-integration/all/specifications/*.gemspec "$R/usr/local/bundle/specifications/"
find "$R" -path '*/specifications/*.gemspec' -type f | sort | ruby -e '
root = ARGV[0]
STDIN.read.split.each do |f|
  next unless f =~ %r{/specifications/([^/]+|default/[^/]+)\z}
  s = Gem::Specification.load(f) or abort("cannot load #{f}")
  puts [s.name, s.version, f.delete_prefix(root + "/")].join("\t")
end' "$R" >"$E/gem.tsv"

# --- PHP: composer install of Debian-packaged libraries, offline --------------
# Composer copies each library from /usr/share/php (a "package" repository
# whose dist is a local path) and writes vendor/composer/installed.json.
mkdir -p "$R/var/www"
$PY - >"$R/var/www/composer.json" <<'EOF'
import json, subprocess
libs = {  # Composer name: (Debian package, directory under /usr/share/php, tag prefix)
    "psr/log": ("php-psr-log", "Psr/Log", ""),
    "psr/container": ("php-psr-container", "Psr/Container", ""),
    "composer/semver": ("php-composer-semver", "Composer/Semver", ""),
    "react/promise": ("php-react-promise", "React/Promise", "v"),
    "symfony/console": ("php-symfony-console", "Symfony/Component/Console", "v"),
    "symfony/string": ("php-symfony-string", "Symfony/Component/String", "v"),
}
packages, require = [], {}
for name, (deb, directory, prefix) in libs.items():
    v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", deb],
                       capture_output=True, text=True, check=True).stdout
    upstream = v.split(":")[-1].rsplit("-", 1)[0].split("+")[0]
    packages.append({"name": name, "version": prefix + upstream,
                     "dist": {"type": "path", "url": "/usr/share/php/" + directory,
                              "transport-options": {"symlink": False}}})
    require[name] = "*"
print(json.dumps({"name": "trawl/app", "require": require, "config": {"lock": False},
                  "repositories": [{"packagist.org": False},
                                   {"type": "package", "package": packages}]}, indent=2))
EOF
(cd "$R/var/www" && log "composer install in /var/www" &&
    COMPOSER_DISABLE_NETWORK=1 COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_HOME="$WORK/composer-home" \
        composer install -q --no-interaction --no-plugins --no-scripts --no-autoloader >&2 &&
    COMPOSER_DISABLE_NETWORK=1 COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_HOME="$WORK/composer-home" \
        composer show --format=json >"$WORK/composer-show.json")
mkdir -p "$R/var/www-v1/vendor/composer"
$PY - "$R" "$WORK/composer-show.json" >"$E/composer.tsv" <<'EOF'
import json, sys
root, show = sys.argv[1], json.load(open(sys.argv[2]))
installed = json.load(open(f"{root}/var/www/vendor/composer/installed.json"))
# Composer 1 wrote the package list alone, as a top-level array.
json.dump(installed["packages"], open(f"{root}/var/www-v1/vendor/composer/installed.json", "w"), indent=4)
for d in ("var/www", "var/www-v1"):
    for p in show["installed"]:
        print(f"{p['name']}\t{p['version']}\t{d}/vendor/composer/installed.json")
EOF

# --- Which OS package owns each metadata file, by dpkg's own lookup -----------
for tsv in python gem dotnet; do cut -f3 "$E/$tsv.tsv"; done | sort -u | while read -r path; do
    owner=$(dpkg --root="$R" -S "/$path" 2>/dev/null | cut -d: -f1) || true
    [[ -n $owner ]] && printf '%s\t%s\n' "$path" "$owner"
done >"$E/owners.tsv"

for f in "$E"/*.tsv; do
    [[ -s $f ]] || { log "$f is empty"; exit 1; }
done
touch "$OUT/.complete"
log "done: $(cat "$E"/*.tsv | wc -l) expected rows in $E"
