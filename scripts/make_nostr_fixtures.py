#!/usr/bin/env python3
"""Writes fixtures/nostr/signed_events.jsonl: NIP-01 events signed by an implementation other than
tributary's, each with the verdict a verifier must reach.

- The id is sha256 of the NIP-01 serialisation made by Python's json module
  (`[0, pubkey, created_at, kind, tags, content]`, no whitespace, non-ASCII kept, control characters
  escaped as JSON.stringify does).
- The signature is BIP-340 Schnorr by coincurve (libsecp256k1), over the id, with fixed test keys and
  fixed auxiliary randomness, so the output is deterministic.
- Every valid event is checked again with coincurve's verifier before it is written.
- Tampered copies (content, tag, created_at, kind, pubkey, id or signature changed) carry the verdict
  `id_mismatch` or `bad_signature`.

Run with the venv of ./scripts/python-env.sh:  .venv/bin/python scripts/make_nostr_fixtures.py
"""

import hashlib
import json
import pathlib

from coincurve import PrivateKey
from coincurve.keys import PublicKeyXOnly

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "nostr" / "signed_events.jsonl"

KEYS = [PrivateKey(bytes([n]) * 32) for n in (1, 2, 3)]


def serialise(ev):
    return json.dumps(
        [0, ev["pubkey"], ev["created_at"], ev["kind"], ev["tags"], ev["content"]],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def sign(key, created_at, kind, tags, content, aux):
    pub = key.public_key_xonly.format().hex()
    ev = {"pubkey": pub, "created_at": created_at, "kind": kind, "tags": tags, "content": content}
    digest = hashlib.sha256(serialise(ev)).digest()
    sig = key.sign_schnorr(digest, aux_randomness=hashlib.sha256(aux.encode()).digest())
    assert PublicKeyXOnly(bytes.fromhex(pub)).verify(sig, digest)
    return {"id": digest.hex(), **ev, "sig": sig.hex()}


CASES = [
    (0, 0, [], '{"name":"alice","about":"tributary test key 1"}'),
    (1, 1, [], "hello nostr"),
    (1, 1, [["t", "nostr"], ["p", "00" * 32, "wss://relay.example.com"]], "tags of several lengths"),
    (1, 1, [["e", "11" * 32, "", "root"]], "an empty tag value"),
    (2, 1, [], "line one\nline two\ttabbed\r\n\"quoted\" back\\slash"),
    (2, 1, [], "control \u0000 \u0001 \u001f \u007f and \b \f"),
    (0, 1, [], "unicode: 日本語, emoji 🎉, combining é, RTL \u200f שלום"),
    (1, 3, [["p", "22" * 32], ["p", "33" * 32]], ""),
    (2, 10002, [["r", "wss://relay.damus.io"], ["r", "wss://nos.lol", "read"], ["r", "wss://relay.example.com", "write"]], ""),
    (0, 30023, [["d", "article-1"], ["title", "A long-form post"]], "# Title\n\nBody with `code` and </script>"),
    (1, 5, [["e", "44" * 32], ["k", "1"]], "deleted by its author"),
    (2, 1, [["expiration", "1700000000"]], "expires (NIP-40)"),
    (0, 65535, [], "the largest kind"),
]


def main():
    lines = []
    created = 1_700_000_000
    for i, (k, kind, tags, content) in enumerate(CASES):
        ev = sign(KEYS[k], created + i, kind, tags, content, f"aux {i}")
        lines.append({"verdict": "valid", "event": ev})
    base = lines[4]["event"]
    tampered = [
        ("content", lambda e: {**e, "content": e["content"] + "!"}, "id_mismatch"),
        ("tag", lambda e: {**e, "tags": [["t", "added"]]}, "id_mismatch"),
        ("created_at", lambda e: {**e, "created_at": e["created_at"] + 1}, "id_mismatch"),
        ("kind", lambda e: {**e, "kind": 7}, "id_mismatch"),
        ("pubkey", lambda e: {**e, "pubkey": KEYS[0].public_key_xonly.format().hex()}, "id_mismatch"),
        ("sig", lambda e: {**e, "sig": e["sig"][:-2] + ("00" if e["sig"][-2:] != "00" else "01")}, "bad_signature"),
    ]
    for what, change, verdict in tampered:
        lines.append({"verdict": verdict, "tampered": what, "event": change(base)})
    # The id recomputed after tampering, so only the signature is wrong: a forged event.
    forged = {**base, "content": "forged"}
    forged["id"] = hashlib.sha256(serialise(forged)).hexdigest()
    lines.append({"verdict": "bad_signature", "tampered": "content, id recomputed", "event": forged})
    # Another key's signature over the right id.
    other = {**base}
    other["sig"] = KEYS[1].sign_schnorr(bytes.fromhex(base["id"]), aux_randomness=b"\x00" * 32).hex()
    lines.append({"verdict": "bad_signature", "tampered": "signed by another key", "event": other})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(lines)} events to {OUT}")


if __name__ == "__main__":
    main()
