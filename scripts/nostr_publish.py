#!/usr/bin/env python3
"""Signs a kind-1 note and publishes it to a Nostr relay, printing the relay's OK answer.

Usage: .venv/bin/python scripts/nostr_publish.py ws://127.0.0.1:7777 "hello" [--secret HEX] [--created-at N]

The key is a fixed test key unless --secret is given. Signing is BIP-340 Schnorr by libsecp256k1 (coincurve),
the id the sha256 of the NIP-01 serialisation; websockets comes with nostr-relay (scripts/python-env.sh).
"""
import argparse
import asyncio
import hashlib
import json
import time

import coincurve
import websockets


def sign(secret: bytes, kind: int, created_at: int, tags: list, content: str) -> dict:
    key = coincurve.PrivateKey(secret)
    pubkey = key.public_key_xonly.format().hex()
    serial = json.dumps([0, pubkey, created_at, kind, tags, content], separators=(",", ":"), ensure_ascii=False)
    event_id = hashlib.sha256(serial.encode()).digest()
    sig = key.sign_schnorr(event_id).hex()
    return {"id": event_id.hex(), "pubkey": pubkey, "created_at": created_at, "kind": kind, "tags": tags,
            "content": content, "sig": sig}


async def publish(url: str, event: dict) -> list:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(["EVENT", event]))
        while True:
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if answer[0] == "OK" and answer[1] == event["id"]:
                return answer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("relay")
    p.add_argument("content")
    p.add_argument("--secret", default="11" * 32, help="the secret key, 64 hex digits (default: a test key)")
    p.add_argument("--created-at", type=int, default=None, help="seconds since the epoch (default: now)")
    a = p.parse_args()
    event = sign(bytes.fromhex(a.secret), 1, a.created_at or int(time.time()), [], a.content)
    print(json.dumps({"id": event["id"], "answer": asyncio.run(publish(a.relay, event))}))


if __name__ == "__main__":
    main()
