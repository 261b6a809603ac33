#!/usr/bin/env bash
# Makes sure the test peers the tests talk to are running on loopback, starting or installing them when
# they are not. Each peer is checked, then started, then installed (Debian packages, when run as root).
#
# Usage: ./scripts/peers.sh      (./scripts/test.sh runs it)
#        ./scripts/peers.sh evm  only the EVM nodes (the evm tests run this when a node is missing)
#
# Peers: Redis (127.0.0.1:6379, or TRIBUTARY_REDIS_URL) for the redis sink tests; PostgreSQL (127.0.0.1:5432,
# user postgres with trust auth on loopback, or TRIBUTARY_POSTGRES_URL) for the postgres sink tests; NATS with
# JetStream (127.0.0.1:4222, or TRIBUTARY_NATS_URL) for the nats sink tests; the tansu binary (TRIBUTARY_TANSU, or
# ~/.cargo/bin/tansu) for the kafka sink tests, which start it themselves on free ports with memory storage.
set -euo pipefail

say() { printf '  %s\n' "$*"; }

# EVM nodes for the evm source tests: anvil (Foundry), hardhat and ganache, and solc-js, from npm into a cache
# directory later runs reuse (TRIBUTARY_NPM_DIR, default ~/.cache/tributary/npm). The tests start them
# themselves on free loopback ports.
evm_peers() {
  local dir="${TRIBUTARY_NPM_DIR:-$HOME/.cache/tributary/npm}"
  local anvil="$dir/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
  # `hardhat node` runs only inside a Hardhat project: an empty config makes the cache directory one
  # (chain id 31337, automining, the deterministic accounts).
  [[ -f "$dir/hardhat.config.js" ]] || { mkdir -p "$dir" && printf 'module.exports = { networks: { hardhat: {} } };\n' >"$dir/hardhat.config.js"; }
  if [[ -x "$anvil" && -x "$dir/node_modules/.bin/hardhat" && -x "$dir/node_modules/.bin/ganache" ]]; then
    say "evm: anvil, hardhat and ganache in $dir"
    return
  fi
  command -v npm >/dev/null || { echo "npm not found: install Node.js (apt-get install nodejs npm)" >&2; return 1; }
  say "evm: installing anvil, hardhat, ganache and solc into $dir (npm)"
  mkdir -p "$dir"
  [[ -f "$dir/package.json" ]] || printf '{"name":"tributary-test-peers","private":true}\n' >"$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error \
    @foundry-rs/anvil@1.7.1 hardhat@2.29.1 ganache@7.9.2 solc@0.8.37 >/dev/null)
  [[ -x "$anvil" ]] || { echo "evm: $anvil missing after npm install" >&2; return 1; }
}

if [[ "${1:-}" == "evm" ]]; then
  evm_peers
  exit 0
fi
evm_peers

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

# JetStream answers $JS.API.INFO with an account_info_response; a server without -js has no responder.
# Speaks the NATS text protocol over bash's /dev/tcp (no client needed).
nats_js_up() {
  local reply
  exec 3<>/dev/tcp/127.0.0.1/4222 2>/dev/null || return 1
  printf 'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.tributary_peers 1\r\nPUB $JS.API.INFO _INBOX.tributary_peers 0\r\n\r\nPING\r\n' >&3
  reply=$(timeout 1 cat <&3 || true)
  exec 3>&-
  grep -q 'account_info_response' <<<"$reply" && ! grep -q '"error"' <<<"$reply"
}

if [[ -n "${TRIBUTARY_NATS_URL:-}" ]]; then
  say "nats: using TRIBUTARY_NATS_URL"
elif nats_js_up; then
  say "nats: running with JetStream on 127.0.0.1:4222"
elif (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  echo "a NATS server listens on 127.0.0.1:4222 without JetStream: restart it with -js -sd DIR" >&2
  exit 1
else
  command -v nats-server >/dev/null || { say "nats: installing nats-server"; apt_install nats-server; }
  dir="${TMPDIR:-/tmp}/tributary-nats"
  say "nats: starting nats-server with JetStream on 127.0.0.1:4222 (store $dir)"
  mkdir -p "$dir"
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd "$dir" >"$dir/server.log" 2>&1 &
  disown
  for _ in $(seq 50); do nats_js_up && break; sleep 0.2; done
  nats_js_up || { echo "nats-server did not answer JetStream requests on 127.0.0.1:4222 (log: $dir/server.log)" >&2; exit 1; }
fi

# tansu: a Kafka-protocol broker in Rust. A plain install has no storage engine: dynostore brings memory://.
# The first install compiles for about 16 minutes; cargo keeps the binary in ~/.cargo/bin afterwards.
tansu_bin="${TRIBUTARY_TANSU:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
if [[ -x "$tansu_bin" ]]; then
  say "tansu: $tansu_bin"
elif pgrep -f "cargo install tansu" >/dev/null; then
  echo "tansu: an install is already running; wait for it to finish, then run this again" >&2
  exit 1
else
  say "tansu: installing (cargo install tansu --features dynostore --locked; about 16 minutes on 2 cores)"
  cargo install tansu --features dynostore --locked
fi

# nostr-rs-relay: the Nostr relay the nostr source tests archive from (started by the tests on free ports,
# each with a database directory of its own). It needs protoc to build; its lock file does not build with
# this toolchain, so it is installed without --locked. About 9 minutes the first time, cached afterwards.
nostr_bin="${TRIBUTARY_NOSTR_RS_RELAY:-${CARGO_HOME:-$HOME/.cargo}/bin/nostr-rs-relay}"
if [[ -x "$nostr_bin" ]]; then
  say "nostr-rs-relay: $nostr_bin"
elif pgrep -f "cargo install nostr-rs-relay" >/dev/null; then
  echo "nostr-rs-relay: an install is already running; wait for it to finish, then run this again" >&2
  exit 1
else
  command -v protoc >/dev/null || { say "nostr-rs-relay: installing protobuf-compiler (protoc)"; apt_install protobuf-compiler; }
  say "nostr-rs-relay: installing (cargo install nostr-rs-relay; about 9 minutes on 2 cores)"
  cargo install nostr-rs-relay
fi
