#!/usr/bin/env bash
# Runs the dashboard's end-to-end test (run.mjs) in headless Chromium.
# STEWARD_BIN: the steward binary to test (default target/debug/steward; build it first).
# Needs /usr/bin/chromium (apt-get install chromium) and node; installs the npm deps if missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${STEWARD_BIN:-target/debug/steward}"
case "$bin" in
    /*) ;;
    *) if [[ -e "$PWD/$bin" ]]; then bin="$PWD/$bin"; else bin="$repo/$bin"; fi ;;
esac
export STEWARD_BIN="$bin"
cd "$here"
[[ -d node_modules/playwright-core ]] || npm ci --no-audit --no-fund
# run.mjs bounds itself (150 s); this is the backstop.
exec timeout -k 5 170 node run.mjs
