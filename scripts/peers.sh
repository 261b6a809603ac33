#!/usr/bin/env bash
# Makes sure the test peers the tests talk to are running on loopback, starting or installing them when
# they are not. Each peer is checked, then started, then installed (Debian packages, when run as root).
#
# Usage: ./scripts/peers.sh      (./scripts/test.sh runs it)
#
# Peers: Redis (127.0.0.1:6379, or TRIBUTARY_REDIS_URL) for the redis sink tests; PostgreSQL (127.0.0.1:5432,
# user postgres with trust auth on loopback, or TRIBUTARY_POSTGRES_URL) for the postgres sink tests.
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

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
# The newest installed server version (Debian's postgresql-common layout), empty when none is installed.
pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }

if [[ -n "${TRIBUTARY_POSTGRES_URL:-}" ]]; then
  say "postgresql: using TRIBUTARY_POSTGRES_URL"
elif pg_up; then
  say "postgresql: running on 127.0.0.1:5432"
else
  if [[ -z "$(pg_version)" ]] || ! command -v pg_isready >/dev/null; then
    say "postgresql: installing postgresql"
    apt_install postgresql
  fi
  v=$(pg_version)
  [[ -n "$v" ]] || { echo "postgresql: no server under /usr/lib/postgresql after installing" >&2; exit 1; }
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | grep -qx "$v main"; then
    say "postgresql: creating cluster $v main"
    pg_createcluster "$v" main >/dev/null
  fi
  # The tests connect as postgres over TCP on loopback without a password (a test machine's server).
  hba=/etc/postgresql/$v/main/pg_hba.conf
  if [[ -w "$hba" ]] && ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    say "postgresql: trusting loopback connections in $hba"
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "postgresql: starting cluster $v main on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$v" main start
  for _ in $(seq 100); do pg_up && break; sleep 0.1; done
  pg_up || { echo "postgresql did not answer on 127.0.0.1:5432 (pg_lsclusters; /var/log/postgresql/)" >&2; exit 1; }
fi
