#!/usr/bin/env bash
# Cycle's container-backups API through a client generated from Cycle's bundle (client.ts).
# STEWARD_BIN: the steward binary (default target/debug/steward; build it first). Needs node
# and npm; installs the pinned npm deps (package-lock.json) if missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../steward-bin.sh"
export STEWARD_BIN="$bin"
cd "$here"
[[ -d node_modules/openapi-fetch ]] || timeout 300 npm ci --no-audit --no-fund
rm -rf build && mkdir build
node prepare.mjs
npx openapi-typescript build/bundle.json -o build/cycle.d.ts
cp client.ts build/client.ts
# The client must type-check against the generated types before it runs.
npx tsc -p tsconfig.json
# steward's certificate is its own, made at first start: trusted on loopback only.
NODE_TLS_REJECT_UNAUTHORIZED=0 timeout -k 5 150 node build/client.js
