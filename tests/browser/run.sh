#!/usr/bin/env bash
# Owns the browser checks of idgen-server's pages (/docs, /status): installs Chromium and playwright-core when missing, builds the server only if absent, runs pages.test.mjs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_install() {
  echo "browser-tests: installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Chromium: Debian's package (playwright-core downloads no browser). CHROMIUM overrides the path.
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$CHROMIUM" != /usr/bin/chromium ]; then
    echo "browser-tests: CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
  fi
  apt_install chromium
fi

# Node (20 in the machine image); Debian's own as a fallback.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi

# playwright-core, pinned by package-lock.json.
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "browser-tests: npm ci"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The server: use what is built; build it only when it is missing.
export IDGEN_SERVER_BIN="${IDGEN_SERVER_BIN:-$root/target/release/idgen-server}"
if [ ! -x "$IDGEN_SERVER_BIN" ]; then
  echo "browser-tests: building idgen-server (release)"
  (cd "$root" && cargo build --release --locked -p idgen-server)
fi

echo "browser-tests: $("$CHROMIUM" --version 2>/dev/null || echo chromium), node $(node --version), server $IDGEN_SERVER_BIN"
cd "$here"
# Every wait inside is bounded; the outer limit only guards against a wedged browser.
exec timeout --kill-after=10 180 node --test --test-reporter=spec pages.test.mjs
