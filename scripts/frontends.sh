#!/usr/bin/env bash
# Install the front-end client libraries the e2e tests drive Everruns with (tests/frontends: AG-UI's @ag-ui/client
# and the Vercel AI SDK's `ai`), exactly as tests/frontends/package-lock.json pins them, and Node.js + npm from
# Debian when they are missing. Idempotent: `npm ci` runs again only when the lock file changed.
set -euo pipefail

DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/frontends"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "frontends: Node.js >= 18 is needed, found $(node --version)" >&2; exit 1; }

stamp="$DIR/node_modules/.installed-from-lock"
if [ ! -f "$stamp" ] || [ "$DIR/package-lock.json" -nt "$stamp" ]; then
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
echo "frontends: node $(node --version), $(cd "$DIR" && node -p '["@ag-ui/client", "ai"].map(p => p + " " + require("./node_modules/" + p + "/package.json").version).join(", ")')"
