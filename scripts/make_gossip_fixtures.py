#!/usr/bin/env python3
"""Generates cryptographically valid BOLT #7 gossip for edge cases into fixtures/lightning/generated/.

Signatures are made with coincurve (libsecp256k1) over sha256d of each message's signed part, with
deterministic keys, so the output is the same on every run. The envelope shapes and the gossip_store
file are written with lnhistoryclient's own helpers (lnhistoryclient.testing, lnhistoryclient.framing),
and every file is read back with lnhistoryclient's readers before it is written. The Rust tests read
these files; they do not need Python.

Usage: .venv/bin/python scripts/make_gossip_fixtures.py   (after ./scripts/python-env.sh)
"""

import hashlib
import struct
import sys
from pathlib import Path

from coincurve import PrivateKey, PublicKey
from lnhistoryclient import testing
from lnhistoryclient.framing import build_raw_gossip, canonical_gossip_id
from lnhistoryclient.parser.gossip_file import read_gossip_file

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "lightning" / "generated"

# Genesis hashes in wire order (as gossip carries them).
MAINNET = bytes.fromhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
TESTNET = bytes.fromhex("43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000")

T0 = 1_700_000_000


def key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(b"tributary-fixture-" + name.encode()).digest())


def pub(k: PrivateKey) -> bytes:
    return k.public_key.format(compressed=True)


def sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def sign(k: PrivateKey, signed: bytes) -> bytes:
    """64-byte compact low-S ECDSA signature of sha256d(signed)."""
    sig = k.sign_recoverable(sha256d(signed), hasher=None)[:64]
    assert PublicKey(pub(k)).verify(to_der(sig), sha256d(signed), hasher=None)
    return sig


def to_der(compact: bytes) -> bytes:
    from coincurve.ecdsa import cdata_to_der, deserialize_compact

    return cdata_to_der(deserialize_compact(compact))


def scid(block: int, tx: int, out: int) -> int:
    return (block << 40) | (tx << 16) | out


NODE_A, NODE_B = key("node-a"), key("node-b")
BTC_A, BTC_B = key("bitcoin-a"), key("bitcoin-b")
# BOLT #7: node_id_1 is the lexicographically lesser of the two node ids.
if pub(NODE_A) > pub(NODE_B):
    NODE_A, NODE_B, BTC_A, BTC_B = NODE_B, NODE_A, BTC_B, BTC_A


def channel_announcement(chain=MAINNET, short_channel_id=scid(800_000, 1, 0), tamper=None) -> bytes:
    signed = struct.pack(">H", 0) + chain + struct.pack(">Q", short_channel_id)
    signed += pub(NODE_A) + pub(NODE_B) + pub(BTC_A) + pub(BTC_B)
    sigs = [sign(k, signed) for k in (NODE_A, NODE_B, BTC_A, BTC_B)]
    if tamper is not None:  # a valid signature, of other bytes
        sigs[tamper] = sign((NODE_A, NODE_B, BTC_A, BTC_B)[tamper], signed + b"\x00")
    return struct.pack(">H", 256) + b"".join(sigs) + signed


def address_bytes() -> bytes:
    a = bytes([1]) + bytes([203, 0, 113, 7]) + struct.pack(">H", 9735)  # IPv4
    a += bytes([2]) + bytes.fromhex("20010db8000000000000000000000001") + struct.pack(">H", 9736)  # IPv6
    onion = hashlib.sha256(b"tributary-onion").digest() + bytes.fromhex("abcd") + bytes([3])
    a += bytes([4]) + onion + struct.pack(">H", 9737)  # Tor v3 (35 bytes)
    host = b"node.example.com"
    a += bytes([5, len(host)]) + host + struct.pack(">H", 9738)  # DNS hostname
    return a


def node_announcement(k: PrivateKey, ts: int, alias: bytes, tamper_alias: bool = False) -> bytes:
    features = bytes.fromhex("0800000000000000000000000000000000000000000000000000000000000000")[:2]
    addrs = address_bytes()
    signed = struct.pack(">H", len(features)) + features + struct.pack(">I", ts) + pub(k)
    signed += bytes.fromhex("ff9900") + alias.ljust(32, b"\x00") + struct.pack(">H", len(addrs)) + addrs
    sig = sign(k, signed)
    if tamper_alias:
        signed = signed.replace(alias, alias.upper(), 1)
    return struct.pack(">H", 257) + sig + signed


def channel_update(
    direction: int,
    ts: int,
    fee_base: int = 1000,
    chain=MAINNET,
    legacy: bool = False,
    tlv: bytes = b"",
    tamper_fee: bool = False,
    short_channel_id=scid(800_000, 1, 0),
    signer=None,
) -> bytes:
    message_flags = 0 if legacy else 1
    signed = chain + struct.pack(">QIBBHQII", short_channel_id, ts, message_flags, direction, 40, 1000, fee_base, 10)
    if not legacy:
        signed += struct.pack(">Q", 990_000_000)
    signed += tlv
    sig = sign(signer or (NODE_A, NODE_B)[direction], signed)
    if tamper_fee:
        signed = signed[:-(12 + len(tlv))] + struct.pack(">I", fee_base + 1) + signed[-(8 + len(tlv)) :]
    return struct.pack(">H", 258) + sig + signed


INBOUND_FEE_TLV = bytes.fromhex("fdd90308") + struct.pack(">ii", -100, -5)


def write_hex(name: str, lines):
    path = OUT / name
    with open(path, "w") as f:
        for comment, msg in lines:
            if comment:
                f.write(f"# {comment}\n")
            f.write(msg.hex() + "\n")
    print(f"wrote {path.relative_to(OUT.parent.parent.parent)}", file=sys.stderr)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ca = channel_announcement()
    na_a = node_announcement(NODE_A, T0 + 10, b"tributary-a")
    na_b = node_announcement(NODE_B, T0 + 11, b"tributary-b \xe2\x9a\xa1")
    valid = [
        ("channel_announcement 800000x1x0", ca),
        ("node_announcement node_id_1 (ipv4, ipv6, torv3, dns addresses)", na_a),
        ("node_announcement node_id_2 (UTF-8 alias)", na_b),
        ("channel_update direction 0", channel_update(0, T0 + 20)),
        ("channel_update direction 1 with LND inbound fee TLV (-100 msat, -5 ppm)", channel_update(1, T0 + 21, tlv=INBOUND_FEE_TLV)),
        ("legacy channel_update without htlc_maximum_msat (message_flags 0), direction 0", channel_update(0, T0 + 22, legacy=True)),
    ]
    write_hex("valid.hex", valid)

    tampered = [
        ("expect bad_signature node_signature_2", channel_announcement(tamper=1)),
        ("expect bad_signature bitcoin_signature_1", channel_announcement(tamper=2)),
        ("expect bad_signature signature (alias changed after signing)", node_announcement(NODE_A, T0 + 12, b"tributary-a", tamper_alias=True)),
        ("expect bad_signature signature (fee changed after signing)", channel_update(0, T0 + 23, tamper_fee=True)),
        ("expect bad_signature signature (direction 1 signed with node_id_1's key)", channel_update(1, T0 + 24, signer=NODE_A)),
    ]
    write_hex("tampered_signature.hex", tampered)

    other = scid(800_000, 2, 0)
    write_hex(
        "other_chain.hex",
        [
            ("expect wrong_chain: testnet3 channel_announcement, validly signed", channel_announcement(chain=TESTNET, short_channel_id=other)),
            ("expect wrong_chain: testnet3 channel_update, validly signed", channel_update(0, T0 + 30, chain=TESTNET, short_channel_id=other)),
        ],
    )

    ooo = scid(800_000, 3, 0)
    write_hex(
        "out_of_order.hex",
        [
            ("channel_announcement 800000x3x0", channel_announcement(short_channel_id=ooo)),
            ("channel_update direction 0 at t=T0+3", channel_update(0, T0 + 3, fee_base=3, short_channel_id=ooo)),
            ("channel_update direction 0 at t=T0+1", channel_update(0, T0 + 1, fee_base=1, short_channel_id=ooo)),
            ("channel_update direction 0 at t=T0+2", channel_update(0, T0 + 2, fee_base=2, short_channel_id=ooo)),
        ],
    )

    # Every valid message in every envelope shape, made by lnhistoryclient.testing itself.
    shapes = [
        ("canonical", testing.canonical_envelope),
        ("off_by_two", testing.offby2_envelope),
        ("no_varint", testing.no_varint_envelope),
        ("varint_payload", testing.varint_payload_envelope),
        ("payload_only", testing.payload_only_envelope),
    ]
    env = []
    for comment, msg in valid:
        for shape, fn in shapes:
            env.append((f"{shape} {comment} id={canonical_gossip_id(msg)}", fn(msg)))
    write_hex("envelopes.hex", env)

    msgs = [m for _, m in valid]
    # A Core Lightning gossip_store (v16, with its uuid record), written by lnhistoryclient.testing with
    # the crc32c package: a deleted record, a channel_amount after the announcement, a channel_dying, and
    # the gossip_store_ended marker at the end.
    records = [ca, testing.make_channel_amount(1_000_000), (na_a, 0x8000), na_a, na_b]
    records += msgs[3:]
    records += [testing.make_channel_dying(scid(800_000, 1, 0), 800_012), testing.make_gossip_store_ended(1234, testing.make_uuid(2))]
    store = testing.make_gossip_store(records, store_uuid=testing.make_uuid(1))
    (OUT / "valid.gossip_store").write_bytes(store)
    got = list(read_gossip_file(str(OUT / "valid.gossip_store")))
    assert got[:3] == [testing.make_gossip_store_uuid(testing.make_uuid(1)), ca, testing.make_channel_amount(1_000_000)], got[:3]
    assert len(got) == 1 + len(records) - 1, len(got)

    # GSP: "GSP\x01" then big-endian CompactSize(len(msg)) ‖ msg, as lnhistoryclient's GSP reader reads it.
    gsp = b"GSP\x01" + b"".join((bytes([len(m)]) if len(m) < 0xFD else b"\xfd" + struct.pack(">H", len(m))) + m for m in msgs)
    (OUT / "valid.gsp").write_bytes(gsp)
    assert list(read_gossip_file(str(OUT / "valid.gsp"))) == msgs

    # ln-history's canonical stream: concatenated raw_gossip envelopes.
    (OUT / "valid.compact").write_bytes(b"".join(build_raw_gossip(m) for m in msgs))
    print(f"wrote {OUT}/valid.gossip_store, valid.gsp, valid.compact", file=sys.stderr)


if __name__ == "__main__":
    main()
