#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser) when it is missing. Idempotent.
# Playwright drives this browser; `playwright install` (a download from Microsoft's CDN) is never used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x "$CHROMIUM" ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
[ -x "$CHROMIUM" ] || { echo "$CHROMIUM is missing after apt-get install chromium" >&2; exit 1; }
echo "browser: $("$CHROMIUM" --version 2>/dev/null)"
