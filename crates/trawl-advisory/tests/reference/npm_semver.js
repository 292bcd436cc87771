// Reference side of the npm differential test: node's `semver` package.
//
// Reads {"versions": [str], "pairs": [[i, j]]} as JSON on stdin and writes
// {"reference": "semver X", "parsed": [str | {"error": message}],
//  "cmp": [-1 | 0 | 1 | null]} on stdout: for each version what
// `new SemVer(v).version` gives (loose = false) or the error it throws, and for
// each pair `semver.compare(a, b)` (null when either does not parse).
'use strict'

const semver = require('semver')
const { version } = require('semver/package.json')

const chunks = []
process.stdin.on('data', (chunk) => chunks.push(chunk))
process.stdin.on('end', () => {
  const job = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const parsed = job.versions.map((v) => {
    try {
      return new semver.SemVer(v)
    } catch (error) {
      return error
    }
  })
  const out = {
    reference: `semver ${version}`,
    parsed: parsed.map((p) => (p instanceof Error ? { error: p.message } : p.version)),
    cmp: job.pairs.map(([i, j]) => {
      if (parsed[i] instanceof Error || parsed[j] instanceof Error) {
        return null
      }
      return semver.compare(job.versions[i], job.versions[j])
    }),
  }
  process.stdout.write(JSON.stringify(out))
})
