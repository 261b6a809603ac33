#!/usr/bin/env python3
"""Decodes EVM logs with PyPI's eth-abi (an independent ABI decoder) and compares the result with the
`event` and `args` tributary's evm source put in each event's data.

Usage: evm_abi_check.py 'event Transfer(address indexed from, address indexed to, uint256 value)' ... < events.json

stdin: a JSON array of event data objects ({topics, data, event, args}). stdout: one JSON object
{"checked": N, "mismatches": [...]}; each mismatch names the log, the argument, both values.
Only elementary types (no tuples) in the entries: enough for the test contract's events.
"""
import json
import re
import sys

from eth_abi import decode
from eth_utils import keccak


def parse_entry(text):
    m = re.fullmatch(r"\s*event\s+(\w+)\s*\((.*)\)\s*", text)
    if not m:
        raise SystemExit(f"not an event entry: {text!r}")
    name, params = m.group(1), []
    for i, p in enumerate(x.strip() for x in m.group(2).split(",") if x.strip()):
        words = p.split()
        indexed = "indexed" in words[1:]
        rest = [w for w in words[1:] if w != "indexed"]
        params.append({"type": words[0], "indexed": indexed, "name": rest[0] if rest else f"arg{i}"})
    signature = f"{name}({','.join(p['type'] for p in params)})"
    return {"name": name, "params": params, "topic0": "0x" + keccak(text=signature).hex()}


def normal(v):
    """eth-abi's value in tributary's JSON form: integers as numbers up to 2^53, else decimal strings;
    addresses and bytes as lowercase 0x hex."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 else str(v)
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if isinstance(v, str) and v.startswith("0x"):
        return v.lower()
    if isinstance(v, (list, tuple)):
        return [normal(x) for x in v]
    return v


def main():
    entries = {e["topic0"]: e for e in map(parse_entry, sys.argv[1:])}
    logs = json.load(sys.stdin)
    checked, mismatches = 0, []
    for d in logs:
        where = f"{d.get('block_number')}:{d.get('log_index')}"
        entry = entries.get(d["topics"][0]) if d["topics"] else None
        if entry is None:
            if "args" in d:
                mismatches.append({"log": where, "problem": "decoded, but no entry has its topic 0"})
            continue
        checked += 1
        if d.get("event") != entry["name"]:
            mismatches.append({"log": where, "problem": f"event {d.get('event')!r}, expected {entry['name']!r}"})
            continue
        indexed = [p for p in entry["params"] if p["indexed"]]
        body = [p for p in entry["params"] if not p["indexed"]]
        expected = {}
        for p, topic in zip(indexed, d["topics"][1:]):
            expected[p["name"]] = normal(decode([p["type"]], bytes.fromhex(topic[2:]))[0])
        values = decode([p["type"] for p in body], bytes.fromhex(d["data"][2:]))
        for p, v in zip(body, values):
            expected[p["name"]] = normal(v)
        for name, want in expected.items():
            got = d["args"].get(name)
            if got != want:
                mismatches.append({"log": where, "arg": name, "tributary": got, "eth_abi": want})
    print(json.dumps({"checked": checked, "mismatches": mismatches[:20]}))


if __name__ == "__main__":
    main()
