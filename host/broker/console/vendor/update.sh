#!/usr/bin/env bash
# Vendors i18next's browser ES module build into vendor/i18next/, from the
# npm registry's tarball of one pinned version, checked against the
# registry's published SHA-512 integrity. The console loads nothing from a
# CDN: the broker serves these files itself under /console/assets/vendor/.
#
# Usage: vendor/update.sh            (re-creates the pinned version)
# To move to another version, change VERSION and INTEGRITY together
# (`npm view i18next@X.Y.Z dist.integrity`), run this, then run the tests
# (`npm test` in host/broker/console) and look at the console in a browser.
set -euo pipefail

VERSION=27.2.11
INTEGRITY='sha512-eVp93JFGHkDvTGnshSzDC+R3Vj1xx4F1Zj8q18CDbt9jeh/chIpKMTQ9Ho8oQTs0gJfJRkQtySk/eUVD2PsooQ=='

here=$(cd "$(dirname "$0")" && pwd)
out="$here/i18next"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "i18next@$VERSION" >/dev/null)
tarball="$work/i18next-$VERSION.tgz"
[ -f "$tarball" ] || { echo "npm pack did not produce $tarball" >&2; exit 1; }

actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
    echo "integrity mismatch for i18next $VERSION:" >&2
    echo "  expected $INTEGRITY" >&2
    echo "  got      $actual" >&2
    exit 1
fi

tar -xzf "$tarball" -C "$work"
pkg="$work/package"
mkdir -p "$out"
cp "$pkg/dist/esm/i18next.js" "$out/i18next.js"
cp "$pkg/LICENSE" "$out/LICENSE"
cat >"$out/VERSION" <<INFO
i18next $VERSION
from the npm registry tarball i18next-$VERSION.tgz ($INTEGRITY)
file: dist/esm/i18next.js (ES module build, no dependencies), LICENSE (MIT)
INFO
echo "vendored i18next $VERSION into $out"
