#!/usr/bin/env bash
# Everything a fresh clone needs before `npm test` / `npm run demo` / `npm run bench`:
# npm dependencies, the kernel tools the end-to-end tests and the daemon use (as root, via
# apt-get, only when missing), and the build (WebAssembly matcher + TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi

need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ipset >/dev/null 2>&1 || need+=(ipset)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The userspace benchmark's load generators (test/bench/userspace.bench.ts): connection rate
# and streamed throughput with sender and receiver in C.
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
# SCTP probes in the end-to-end tests use a raw socket from Python 3.
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    fi
  else
    echo "setup: missing ${need[*]} (not root or no apt-get); kernel tests will say so and skip" >&2
  fi
fi

echo "setup: building" >&2
npm run --silent build >&2
