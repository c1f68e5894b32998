#!/bin/sh
# The Cube client for the Cube-compatible API's test (tests/server/cube/test_client.py):
# `npm ci` in tests/cube_client, from its lockfile, when node_modules is missing or older than
# the lockfile. Node is required (CI has it): without it this fails rather than skip the test.
set -eu
DIR="$(cd "$(dirname "$0")/../tests/cube_client" && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "error: node and npm are required for the Cube client test (tests/cube_client)" >&2
    exit 1
fi
STAMP="$DIR/node_modules/.package-lock.json"
if [ -f "$STAMP" ] && [ ! "$DIR/package-lock.json" -nt "$STAMP" ]; then
    exit 0
fi
(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error)
echo "installed $(cd "$DIR" && node -p "require('./node_modules/@cubejs-client/core/package.json').version" 2>/dev/null || echo '@cubejs-client/core') in tests/cube_client"
