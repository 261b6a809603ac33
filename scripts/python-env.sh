#!/usr/bin/env bash
# Creates or updates the Python venv at <repo>/.venv with the published peers the tests check against:
# the Standard Webhooks verifiers (standardwebhooks, svix) used by scripts/conformance_receiver.py, and
# ln-history's client (lnhistoryclient, with crc32c for its gossip_store writer) and coincurve
# (libsecp256k1) used by the Lightning tests and scripts/make_gossip_fixtures.py, and pyzmq, whose PUB socket
# plays the gossip-publisher-zmq plugin in the ZeroMQ test, eth-abi (the EVM tests' independent ABI decoder,
# scripts/evm_abi_check.py), and confluent-kafka (bundles librdkafka), the
# independent consumer of the kafka sink tests (scripts/kafka_consume.py), and nostr-relay, the second
# Nostr relay the nostr source tests archive from (`nostr-relay -c CONFIG serve`). Safe to run repeatedly.
# Prints the venv's python path on stdout (everything else goes to stderr).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    python3 -m venv "$venv" >&2
fi

# A no-op (and offline) when all are already installed.
"$venv/bin/pip" install -q --disable-pip-version-check standardwebhooks svix lnhistoryclient coincurve crc32c schemathesis pyzmq confluent-kafka eth-abi 'eth-hash[pycryptodome]' nostr-relay >&2
"$venv/bin/python" -c 'import standardwebhooks.webhooks, svix.webhooks, lnhistoryclient.framing, coincurve, crc32c, zmq, confluent_kafka, eth_abi, eth_utils, nostr_relay'

echo "$venv/bin/python"
