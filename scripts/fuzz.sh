#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (docs/fuzzing.md): each for N executions, one process on one core,
# starting from the committed seeds in fuzz/corpus/<target>; what a run adds to the corpus goes to
# fuzz/target/corpus/<target> (not committed). Prints per target the executions done, the time, the corpus
# size and the result; exits 1 if any target crashed (the input is in fuzz/artifacts/<target>/).
#
# Usage: scripts/fuzz.sh [--runs N] [target...]   N executions per target (default 1,000,000)
#        scripts/fuzz.sh --smoke                   2,000 executions of each target (for ./scripts/test.sh)
#        scripts/fuzz.sh --list                    the targets
# cargo-fuzz needs nightly compiler flags: the stable toolchain is used with RUSTC_BOOTSTRAP=1.
# FUZZ_SANITIZER=none|address (default address) chooses the sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(store_record ingest_json filter config_toml ln_envelope ln_plugin_event ln_formats ln_decode pg_decode evm_decode nostr_relay_url nostr_event nostr_filter nostr_relay_message)
runs=1000000
smoke=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --smoke) smoke=1; runs=2000; shift ;;
    --list) printf '%s\n' "${all[@]}"; exit 0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1; see scripts/fuzz.sh --help" >&2; exit 2 ;;
    *)
      if [[ " ${all[*]} " != *" $1 "* ]]; then
        echo "fuzz.sh: unknown target $1; the targets are: ${all[*]}" >&2
        exit 2
      fi
      targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --runs expects a number of executions, got $runs" >&2; exit 2; }

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz.sh: cargo-fuzz is not installed (install it with: cargo install cargo-fuzz --locked)."
  if [[ $smoke == 1 ]]; then
    echo "fuzz.sh: fuzz smoke SKIPPED: no cargo-fuzz on this machine."
    exit 0
  fi
  exit 1
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$PWD/fuzz/target"
sanitizer="${FUZZ_SANITIZER:-address}"
# Debug assertions (and so overflow checks) on: an overflow is a finding too.
build=(cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer" --debug-assertions)
echo "==> ${build[*]}"
mkdir -p fuzz/target
if ! "${build[@]}" >fuzz/target/build.log 2>&1; then
  tail -30 fuzz/target/build.log
  echo "fuzz.sh: building the fuzz targets failed (log: fuzz/target/build.log)" >&2
  exit 1
fi

failed=0
printf '%-16s %12s %8s %10s  %s\n' target executions seconds corpus result
for t in "${targets[@]}"; do
  work="fuzz/target/corpus/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  log="fuzz/target/$t.log"
  start=$(date +%s)
  set +e
  cargo fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" --debug-assertions "$t" "$work" "fuzz/corpus/$t" -- \
    -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's own time (without the build); the wall time if it did not get that far.
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  secs=${secs:-$(( $(date +%s) - start ))}
  done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # libFuzzer's corpus at the end: inputs/size.
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 | sed 's/corp: //')
  if [[ $rc == 0 ]]; then
    result=ok
  else
    artifact=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | head -1)
    result="CRASH (exit $rc): ${artifact:-no input saved, see $log}"
    failed=1
  fi
  printf '%-16s %12s %8s %10s  %s\n' "$t" "${done_runs:-?}" "$secs" "$corpus" "$result"
done
if [[ $failed == 1 ]]; then
  echo "fuzz.sh: a target crashed; reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> <artifact>" >&2
  exit 1
fi
