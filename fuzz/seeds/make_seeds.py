#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the repository's fixtures
and a few hand-written inputs. Run from the repository root: python3 fuzz/seeds/make_seeds.py
The seeds are committed (small); what a fuzz run adds to a corpus is not."""
import json, os, struct, pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
FIX = ROOT / "fixtures" / "lightning"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def hex_messages(path):
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(bytes.fromhex(line))
    return out


def compact_size(n):
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


msgs = hex_messages(FIX / "cln_gossip_store_sample.hex")
by_type = {}
for m in msgs:
    by_type.setdefault(m[:2], m)
sample = list(by_type.values())  # one channel_announcement, node_announcement, channel_update

# ln_decode: one message of each type, and a truncated one.
for i, m in enumerate(sample):
    put("ln_decode", f"msg{i}", m)
put("ln_decode", "truncated", sample[0][:100])
put("ln_decode", "channel_amount", b"\x10\x05" + struct.pack(">Q", 100000))

# ln_envelope: each message in each framing.
for i, m in enumerate(sample):
    body = m[2:]
    put("ln_envelope", f"canonical{i}", compact_size(len(body)) + m)
    put("ln_envelope", f"offbytwo{i}", compact_size(len(m)) + m)
    put("ln_envelope", f"novarint{i}", m)
    put("ln_envelope", f"payload{i}", body)
    put("ln_envelope", f"varintpayload{i}", compact_size(len(body)) + body)
put("ln_envelope", "stream", b"".join(compact_size(len(m) - 2) + m for m in sample))

# ln_formats: the generated files of every format (first byte: the piece size of the incremental read).
for name in ["valid.gossip_store", "valid.gsp", "valid.compact", "valid.hex"]:
    data = (FIX / "generated" / name).read_bytes()
    put("ln_formats", name, b"\x10" + data)
put("ln_formats", "envelopes.hex", b"\x03" + (FIX / "generated" / "envelopes.hex").read_bytes()[:4000])

# ln_plugin_event: the plugin's JSON, and the same inside ZMTP frames (topic frame, JSON frame).
for i, m in enumerate(sample):
    ev = json.dumps({"metadata": {"type": int.from_bytes(m[:2], "big"), "timestamp": 1700000000,
                                  "sender_node_id": "02" + "ab" * 32, "length": len(m)},
                     "raw_hex": m.hex(), "parsed": {}}).encode()
    put("ln_plugin_event", f"json{i}", ev)
    topic = b"channel_update"
    frame = bytes([0x01, len(topic)]) + topic + bytes([0x02]) + struct.pack(">Q", len(ev)) + ev
    put("ln_plugin_event", f"zmtp{i}", b"\x04\x06\x04PING\x00\x00" + frame)

# ingest_json: bodies as clients send them.
put("ingest_json", "one", '{"kind":"orders.created","data":{"id":1,"total":12.5},"key":"o-1"}')
put("ingest_json", "batch", json.dumps([
    {"kind": "a.b", "data": [1, 2.50, -0.0, 1e300, 123456789012345678901234567890]},
    {"kind": "a.c", "data": "x", "id": "ab" * 32, "occurred_at": "2026-11-22T06:32:28.5+01:00"},
]))
put("ingest_json", "bad", '{"kind":"Bad Kind","data":null}')

# filter: filter JSON, NUL, data JSON, NUL, kind, NUL, key.
def filt(f, data, kind="orders.created", key="k"):
    return json.dumps(f).encode() + b"\0" + json.dumps(data).encode() + b"\0" + kind.encode() + b"\0" + key.encode()
put("filter", "kinds", filt({"kinds": ["orders.*"], "keys": ["k"]}, {}))
put("filter", "where", filt({"where": [{"path": "payment.amount", "op": "gte", "value": 10},
                                       {"path": "status", "op": "in", "value": ["a", "b"]},
                                       {"path": "x", "op": "exists"}]},
                            {"payment": {"amount": 12}, "status": "a", "x": 1}))
put("filter", "bad", filt({"kinds": ["a..b"], "where": [{"path": "", "op": "nope"}]}, None))

# config_toml: the example configs.
for name in ["tributary.example.toml", "lightning.example.toml"]:
    put("config_toml", name, (ROOT / "config" / name).read_bytes())
put("config_toml", "small", '[node]\nlisten = "127.0.0.1:0"\nadmin_key = "k"\n\n[[sources]]\nname = "in"\ntype = "http"\n')

# store_record: first byte selects the decoder (0 event, 1 id entry, 2 observation, 3 pending,
# 4 reject, 5 attempt, 6 dead letter, 7 meta, 8 key).
def event_record():
    def b(s):
        s = s.encode() if isinstance(s, str) else s
        return struct.pack("<I", len(s)) + s
    r = b"\x01" + b"\x11" * 32 + struct.pack("<q", 1_700_000_000_000_000)
    r += b("ingest") + b("orders.created") + b"\x01" + b("o-1") + b"\x01" + struct.pack("<q", 5) + b"\x00"
    r += b(b"") + b('{"total":12.5}') + b"\x01" + b("acme") + b"\x00"
    return r
put("store_record", "event", b"\x00" + event_record())
put("store_record", "id", b"\x01" + struct.pack(">Q", 9) + struct.pack(">qqQ", 1, 2, 3) + b"peer")
put("store_record", "observation", b"\x02" + b"\x22" * 32 + b"obs" + b"\0" * 5 + struct.pack(">qqQ", 1, 2, 3))
put("store_record", "pending", b"\x03" + json.dumps({"seq": 3, "attempts": 2, "due_at": "2026-11-22T05:32:28Z"}).encode())
put("store_record", "meta", b"\x07" + b"12:345")
put("store_record", "key", b"\x08sub\x00" + struct.pack(">Q", 77))

# pg_decode: a flags byte (bit 0: a stream is open, bit 1: relation 1 is the outbox), then one pgoutput
# message as the server lays it out.
def pg_s(s):
    return s.encode() + b"\0"
def pg_tuple(values):
    out = struct.pack(">h", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == "u":
            out += b"u"
        else:
            v = v.encode()
            out += b"t" + struct.pack(">i", len(v)) + v
    return out
row = ["k-1", "miner.portfolio_updated", "user-7", '{"v": [1, 2]}']
put("pg_decode", "begin", b"\x00B" + struct.pack(">qqI", 0x16B3748, 817_000_000_000_000, 734))
put("pg_decode", "commit", b"\x00C\x00" + struct.pack(">qqq", 0x16B3748, 0x16B3778, 817_000_000_000_000))
put("pg_decode", "relation", b"\x00R" + struct.pack(">I", 1) + pg_s("public") + pg_s("t") + b"d" + struct.pack(">h", 2)
    + b"\x01" + pg_s("a") + struct.pack(">Ii", 20, -1) + b"\x00" + pg_s("b") + struct.pack(">Ii", 3802, -1))
put("pg_decode", "insert", b"\x00I" + struct.pack(">I", 1) + b"N" + pg_tuple(row))
put("pg_decode", "insert_outbox", b"\x02I" + struct.pack(">I", 1) + b"N" + pg_tuple(row))
put("pg_decode", "insert_stream", b"\x01I" + struct.pack(">II", 9, 1) + b"N" + pg_tuple(["1", None, "u", "{1,2,NULL}"]))
put("pg_decode", "update", b"\x00U" + struct.pack(">I", 1) + b"O" + pg_tuple(["1", "x", None, "[]"]) + b"N" + pg_tuple(["1", "y", "u", "2026-12-02 06:38:10.5+00"]))
put("pg_decode", "delete", b"\x00D" + struct.pack(">I", 1) + b"K" + pg_tuple(["1", None, None, None]))
put("pg_decode", "truncate", b"\x00T" + struct.pack(">i", 2) + b"\x03" + struct.pack(">II", 1, 2))
put("pg_decode", "message", b"\x00M\x01" + struct.pack(">q", 99) + pg_s("app") + struct.pack(">i", 5) + b"hello")
put("pg_decode", "type", b"\x00Y" + struct.pack(">I", 90000) + pg_s("public") + pg_s("mood"))
put("pg_decode", "stream_start", b"\x00S" + struct.pack(">I", 9) + b"\x01")
put("pg_decode", "stream_commit", b"\x00c" + struct.pack(">IBqqq", 9, 0, 1 << 33, (1 << 33) + 48, 5))
put("pg_decode", "stream_abort", b"\x00A" + struct.pack(">II", 9, 10))

# evm_decode: a part byte (0: a provider answer, 1: a checkpoint, 2: an ABI entry), then the input. The
# answers have the shape anvil gives (an ERC-20 Transfer of USDC on Base, a header, a batch, an error).
def evm_answer(result, id=1):
    return json.dumps({"jsonrpc": "2.0", "id": id, "result": result}).encode()
h32 = lambda c: "0x" + c * 64
transfer_log = {
    "address": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
    "topics": ["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
               "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
               "0x0000000000000000000000000000000000000000000000000000000000000001"],
    "data": "0x0000000000000000000000000000000000000000000000000de0b6b3a7640001",
    "blockHash": h32("a"), "blockNumber": "0x1b4", "blockTimestamp": "0x6553f100",
    "transactionHash": h32("b"), "transactionIndex": "0x0", "logIndex": "0x3", "removed": False,
}
put("evm_decode", "logs", b"\x00" + evm_answer([transfer_log]))
put("evm_decode", "removed", b"\x00" + evm_answer([dict(transfer_log, removed=True)]))
put("evm_decode", "header", b"\x00" + evm_answer({"number": "0x1b4", "hash": h32("a"), "parentHash": h32("c"),
                                                  "timestamp": "0x6553f100"}))
put("evm_decode", "batch", b"\x00" + json.dumps([json.loads(evm_answer("0x1b4", 0)), json.loads(evm_answer([], 1))]).encode())
put("evm_decode", "error", b"\x00" + json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "query returned more than 10000 results"}}).encode())
put("evm_decode", "checkpoint", b"\x01" + json.dumps({"next": 437, "recent": [[436, h32("a"), 4]]}).encode())
put("evm_decode", "abi", b"\x02event Transfer(address indexed from, address indexed to, uint256 value)")
