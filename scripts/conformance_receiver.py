#!/usr/bin/env python3
"""A Standard Webhooks receiver that checks every delivery with two published verifiers.

For each POST it verifies the delivery with the PyPI libraries `standardwebhooks` and `svix`, then checks
that both REJECT (a) the same headers with a tampered body (one trailing space, which parses to the same
JSON) and (b) the original signature with webhook-timestamp moved to now - 3600 s. It appends one JSON line
per delivery to --out:

    {"webhook_id", "standardwebhooks_ok", "svix_ok", "tampered_rejected_by_both",
     "stale_rejected_by_both", "body", "errors"}

and answers 204, or 400 when either library refused the genuine delivery.

Usage (the venv comes from scripts/python-env.sh):

    .venv/bin/python scripts/conformance_receiver.py --port 0 --secret whsec_... --out deliveries.jsonl

It prints `LISTENING <port>` on stdout once it accepts connections (--port 0 picks a free port).
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixError

VERIFIERS = {
    "standardwebhooks": (StandardWebhook, StandardError),
    "svix": (SvixWebhook, SvixError),
}


def verify_all(secret, body, headers):
    """{library: None when it accepted, else the error text}."""
    results = {}
    for name, (cls, _) in VERIFIERS.items():
        try:
            cls(secret).verify(body, headers)
            results[name] = None
        except Exception as exc:  # any failure means "not verified"; the type is recorded
            results[name] = f"{type(exc).__name__}: {exc}"
    return results


def rejected_by_both(secret, body, headers):
    """True when every library raises its verification error (not some other crash)."""
    for cls, error in VERIFIERS.values():
        try:
            cls(secret).verify(body, headers)
            return False
        except error:
            continue
        except Exception:
            return False
    return True


def check_delivery(secret, body, headers):
    genuine = verify_all(secret, body, headers)
    stale_headers = dict(headers)
    stale_headers["webhook-timestamp"] = str(int(time.time()) - 3600)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return {
        "webhook_id": headers.get("webhook-id"),
        "standardwebhooks_ok": genuine["standardwebhooks"] is None,
        "svix_ok": genuine["svix"] is None,
        "tampered_rejected_by_both": rejected_by_both(secret, body + b" ", headers),
        "stale_rejected_by_both": rejected_by_both(secret, body, stale_headers),
        "body": parsed,
        "errors": {k: v for k, v in genuine.items() if v is not None},
    }


def make_handler(secret, out_path, lock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = check_delivery(secret, body, headers)
            with lock, open(out_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record, sort_keys=True) + "\n")
                out.flush()
            ok = record["standardwebhooks_ok"] and record["svix_ok"]
            self.send_response(204 if ok else 400)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            sys.stderr.write("receiver: " + (format % args) + "\n")

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--secret", required=True, help="the sink's signing secret, whsec_...")
    parser.add_argument("--out", required=True, help="file to append one JSON line per delivery to")
    args = parser.parse_args()

    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.secret, args.out, threading.Lock()))
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
