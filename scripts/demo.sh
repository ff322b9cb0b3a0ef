#!/usr/bin/env bash
# The README's main command (after `npm run demo` has run scripts/setup.sh via predemo).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node dist/demo/run-demo.js "$@"
