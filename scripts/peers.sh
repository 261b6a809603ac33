#!/usr/bin/env bash
# Makes sure the test peers the tests talk to are running on loopback, starting or installing them when
# they are not. Each peer is checked, then started, then installed (Debian packages, when run as root).
#
# Usage: ./scripts/peers.sh      (./scripts/test.sh runs it)
#
# Peers: Redis (127.0.0.1:6379, or TRIBUTARY_REDIS_URL) for the redis sink tests.
set -euo pipefail

say() { printf '  %s\n' "$*"; }

apt_install() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "cannot install $1: run as root on a Debian-like machine, or install it yourself" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if [[ -n "${TRIBUTARY_REDIS_URL:-}" ]]; then
  say "redis: using TRIBUTARY_REDIS_URL"
elif redis_up; then
  say "redis: running on 127.0.0.1:6379"
else
  command -v redis-server >/dev/null || { say "redis: installing redis-server"; apt_install redis-server; }
  say "redis: starting redis-server on 127.0.0.1:6379 (no persistence)"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "redis-server did not answer on 127.0.0.1:6379" >&2; exit 1; }
fi
