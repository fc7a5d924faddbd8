#!/usr/bin/env bash
# Builds the Go vulnerability database govulncheck reads, from the
# golang.org/x/vulndb module fetched through the Go module proxy (the only
# route to it where vuln.go.dev is not reachable), and prints its directory.
#
#   tools/vulndb.sh                  build (or reuse) the pinned version
#   VULNDB_VERSION=latest tools/vulndb.sh
#   tools/vulndb.sh --latest         print the newest version on the proxy
#
# The module carries the advisories as OSV files (data/osv/GO-*.json) and
# the tool that indexes them (cmd/indexdb), which writes the layout of
# vuln.go.dev: index/db.json, index/modules.json, ID/GO-*.json. The result
# is cached per version under $WACTL_VULNDB_DIR (default: a directory in
# the Go build cache), so a second run costs nothing.
set -euo pipefail

# Refresh: run `tools/vulndb.sh --latest` and put the version printed here
# (docs/security.md, "Vulnerability checks").
PINNED=v0.0.0-20261105234957-e22db6528018

mod_field() { # module@version field
  go mod download -json "$1" | sed -n "s/^[[:space:]]*\"$2\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

if [ "${1:-}" = "--latest" ]; then
  mod_field golang.org/x/vulndb@latest Version
  exit 0
fi

version=${VULNDB_VERSION:-$PINNED}
if [ "$version" = latest ]; then
  version=$(mod_field golang.org/x/vulndb@latest Version)
fi
cache=${WACTL_VULNDB_DIR:-$(go env GOCACHE)/wactl-vulndb}
out=$cache/$version
if [ -s "$out/index/db.json" ] && [ -s "$out/index/modules.json" ]; then
  echo "$out"
  exit 0
fi

src=$(mod_field "golang.org/x/vulndb@$version" Dir)
if [ -z "$src" ] || [ ! -d "$src/data/osv" ]; then
  echo "vulndb.sh: golang.org/x/vulndb@$version has no data/osv directory" >&2
  exit 1
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "vulndb.sh: indexing $(ls "$src/data/osv" | wc -l) advisories of golang.org/x/vulndb@$version" >&2
# cmd/indexdb is built from the same module version as the data.
(cd "$tmp" && go run "golang.org/x/vulndb/cmd/indexdb@$version" -vulns "$src/data/osv" -out "$tmp/db" >&2)
rm -rf "$out"
mv "$tmp/db" "$out"
echo "$out"
