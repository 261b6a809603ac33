#!/usr/bin/env bash
# Runs every test of tributary: formatting, unit, property, integration (real binary, real store, real
# HTTP), clippy (default features and none), the Standard Webhooks conformance check with PyPI's standardwebhooks and svix, a short smoke of
# every fuzz target, the demo, and a short smoke of the benchmark. Installs what it needs on a fresh
# machine (cargo-nextest, cargo-fuzz, a Python venv).
#
# Usage: ./scripts/test.sh            everything
#        ./scripts/test.sh --quick    skip the fuzz smoke, the demo and the bench smoke
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
cargo --version
if ! command -v cargo-nextest >/dev/null && ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

step "python venv for the webhook conformance test (standardwebhooks, svix)"
TRIBUTARY_PYTHON="$(./scripts/python-env.sh)"
export TRIBUTARY_PYTHON

step "test peers (Redis, PostgreSQL, NATS with JetStream, tansu)"
./scripts/peers.sh

step "formatting"
cargo fmt --all -- --check

step "lints: clippy with warnings as errors, default features and --no-default-features (feature-gated code stays compiled)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --no-default-features -- -D warnings

step "build (release: tests, demo and bench share one build)"
cargo build --release --locked --bins

step "tests"
cargo nextest run --release --locked --workspace --no-fail-fast

if [[ $quick == 0 ]]; then
  step "fuzz smoke: 2,000 executions of each target (docs/fuzzing.md)"
  if ! command -v cargo-fuzz >/dev/null; then
    step "installing cargo-fuzz"
    cargo install cargo-fuzz --locked || echo "could not install cargo-fuzz (offline?): the fuzz smoke is skipped"
  fi
  ./scripts/fuzz.sh --smoke

  step "demo"
  ./target/release/tributary demo

  step "bench smoke (figures are not checked here; see docs/benchmarks.md)"
  ./target/release/tributary bench --quick --out target/bench-smoke.md
fi
step "all tests passed"
