#!/usr/bin/env bash
# Builds dist/wactl_<version>-1_amd64.deb (with nfpm, pinned) and
# dist/wactl-<version>-linux-amd64.tar.gz (the static binary, unit, example
# config, man pages, completions, licences) for other distributions.
#   make package            # version from git describe
#   WACTL_PKG_VERSION=1.2.3 make package
#   DIST=/tmp/out make package    # somewhere else than ./dist
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM_VERSION=v2.48.0
GO=${GO:-go}

raw=${WACTL_PKG_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
# Debian versions must start with a digit; a bare commit id becomes 0~git<id>.
case "$raw" in
  v[0-9]*) version=${raw#v} ;;
  [0-9]*) version=$raw ;;
  *) version="0~git${raw}" ;;
esac
version=${version//-/+}
export WACTL_PKG_VERSION=$version
export WACTL_PKG_MAINTAINER=${WACTL_PKG_MAINTAINER:-wactl maintainers <maintainers@wactl.dev>}

nfpm=$($GO env GOPATH)/bin/nfpm
if ! "$nfpm" --version 2>/dev/null | grep -q "${NFPM_VERSION#v}"; then
  GOFLAGS=-mod=mod $GO install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi

export STAGE
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
make --no-print-directory build VERSION="$raw" >/dev/null
install -m 0755 bin/wactl "$STAGE/wactl"
# The unit in configs/ is written for a manual install under /usr/local.
sed 's#^ExecStart=/usr/local/bin/wactl#ExecStart=/usr/bin/wactl#; /^# wactl — systemd unit. Install:/,/^#   systemctl daemon-reload/d' \
  configs/wactl.service > "$STAGE/wactl.service"
grep -q '^ExecStart=/usr/bin/wactl serve' "$STAGE/wactl.service" || { echo "package: ExecStart not rewritten in the unit" >&2; exit 1; }
$GO run ./tools/gendocs -out "$STAGE/gen"
mkdir -p "$STAGE/man"
for f in "$STAGE"/gen/man/man1/*.1; do gzip -9n < "$f" > "$STAGE/man/$(basename "$f").gz"; done
mv "$STAGE/gen/completions" "$STAGE/completions"
gzip -9n < README.md > "$STAGE/README.md.gz"
# The Debian changelog names this build; the project's history is git's.
{
  echo "wactl ($version-1) unstable; urgency=medium"
  echo
  echo "  * Built from commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); see the project's git log."
  echo
  echo " -- $WACTL_PKG_MAINTAINER  $(date -R -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n > "$STAGE/changelog.Debian.gz"
gzip -9n < THIRD_PARTY_NOTICES.md > "$STAGE/THIRD_PARTY_NOTICES.md.gz"

dist=${DIST:-dist}
mkdir -p "$dist"
deb=$dist/wactl_${version}-1_amd64.deb
rm -f "$deb"
# nfpm expands the environment in some fields only; fill in the paths here.
sed "s#\${STAGE}#$STAGE#g" packaging/nfpm.yaml > "$STAGE/nfpm.yaml"
"$nfpm" package --config "$STAGE/nfpm.yaml" --packager deb --target "$deb" >/dev/null
echo "$deb"

tdir=wactl-${version}-linux-amd64
mkdir -p "$STAGE/$tdir"
cp bin/wactl configs/wactl.service configs/wactl.example.yaml LICENSE THIRD_PARTY_NOTICES.md README.md "$STAGE/$tdir/"
cp -r "$STAGE/gen/man" "$STAGE/completions" "$STAGE/$tdir/"
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner --sort=name -czf "$dist/$tdir.tar.gz" "$tdir"
echo "$dist/$tdir.tar.gz"
