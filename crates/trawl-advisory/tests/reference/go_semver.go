// Reference side of the Go differential test: golang.org/x/mod's semver and
// module packages and golang.org/x/vuln's Go release tag mapping.
//
// Reads {"versions": [str], "pairs": [[i, j]]} as JSON on stdin and writes
// {"reference": name, "parsed": [str | {"error": kind}], "cmp": [-1 | 0 | 1 | null]}
// on stdout. A version starting with "go" is a release tag, mapped with
// GoTagToSemver; any other gets a "v" unless it has one (OSV's Go records leave
// it out). A valid version reads as semver.Canonical of that, followed by
// " pseudo" when module.IsPseudoVersion holds; an invalid one is {"error": "tag"}
// or {"error": "syntax"}. Pairs compare with semver.Compare.
//
// Built by tests/go_differential.rs in GOPATH mode against Debian's
// golang-golang-x-mod-dev and golang-golang-x-vuln-dev, as a package under
// golang.org/x/vuln so that it may import x/vuln's internal semver package.
package main

import (
	"encoding/json"
	"os"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	vulnsemver "golang.org/x/vuln/internal/semver"
)

type job struct {
	Versions []string `json:"versions"`
	Pairs    [][2]int `json:"pairs"`
}

func main() {
	var in job
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	mapped := make([]string, len(in.Versions))
	parsed := make([]interface{}, len(in.Versions))
	for i, v := range in.Versions {
		tag := strings.HasPrefix(v, "go")
		switch {
		case tag:
			mapped[i] = vulnsemver.GoTagToSemver(v)
		case strings.HasPrefix(v, "v"):
			mapped[i] = v
		default:
			mapped[i] = "v" + v
		}
		switch {
		case !semver.IsValid(mapped[i]) && tag:
			parsed[i] = map[string]string{"error": "tag"}
		case !semver.IsValid(mapped[i]):
			parsed[i] = map[string]string{"error": "syntax"}
		case !tag && module.IsPseudoVersion(mapped[i]):
			parsed[i] = semver.Canonical(mapped[i]) + " pseudo"
		default:
			parsed[i] = semver.Canonical(mapped[i])
		}
	}
	cmp := make([]interface{}, len(in.Pairs))
	for k, p := range in.Pairs {
		a, b := mapped[p[0]], mapped[p[1]]
		if semver.IsValid(a) && semver.IsValid(b) {
			cmp[k] = semver.Compare(a, b)
		}
	}
	out := map[string]interface{}{
		"reference": "golang.org/x/mod/semver (" + os.Getenv("TRAWL_GO_REFERENCE") + ")",
		"parsed":    parsed,
		"cmp":       cmp,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
