//! A real peer: PyPI's `lnhistoryclient` (ln-history's own client), run in the repository's venv
//! (`./scripts/python-env.sh` installs it). Every sample message's `gossip_id` must equal
//! `lnhistoryclient.framing.canonical_gossip_id`, and our decoded fields must equal its parsers'.

use super::{hex_lines, sample};
use crate::lightning::{Gossip, decode, gossip_id};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = std::env::var_os("TRIBUTARY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run ./scripts/python-env.sh (it installs lnhistoryclient into .venv)",
        p.display()
    );
    p
}

const SCRIPT: &str = r#"
import json, sys
from lnhistoryclient.framing import canonical_gossip_id
from lnhistoryclient.parser.parser import parse_channel_announcement, parse_node_announcement, parse_channel_update
for line in open(sys.argv[1]):
    m = bytes.fromhex(line.strip())
    t = int.from_bytes(m[:2], "big")
    out = {"id": canonical_gossip_id(m), "type": t}
    if t == 256:
        p = parse_channel_announcement(m[2:])
        out.update(p.to_dict())
    elif t == 257:
        p = parse_node_announcement(m[2:])
        d = p.to_dict()
        out.update(d, addresses=[[a["addr"].strip("[]"), a["port"]] for a in d["addresses"]])
    elif t == 258:
        p = parse_channel_update(m[2:])
        out.update(p.to_dict())
    print(json.dumps(out))
"#;

#[test]
fn gossip_ids_and_fields_agree_with_lnhistoryclient() {
    let mut msgs = sample();
    msgs.extend(hex_lines("generated/valid.hex").into_iter().map(|(_, m)| m));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("messages.hex");
    let text: String = msgs.iter().map(|m| hex::encode(m) + "\n").collect();
    std::fs::write(&input, text).unwrap();
    let out = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(&input)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "lnhistoryclient failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(theirs.len(), msgs.len());
    let mut compared = 0;
    for (m, py) in msgs.iter().zip(&theirs) {
        let ours = gossip_id(m).unwrap().to_hex();
        assert_eq!(ours, py["id"], "gossip_id of {}", hex::encode(m));
        let g = decode(m).unwrap();
        let j = serde_json::to_value(&g).unwrap();
        let same = |ours: &str, theirs: &str| {
            assert_eq!(j[ours], py[theirs], "{ours} of {}", hex::encode(m));
        };
        match &g {
            Gossip::ChannelAnnouncement(_) => {
                same("short_channel_id", "scid");
                same("chain_hash", "chain_hash");
                for f in [
                    "features",
                    "node_id_1",
                    "node_id_2",
                    "bitcoin_key_1",
                    "bitcoin_key_2",
                    "node_signature_1",
                    "node_signature_2",
                    "bitcoin_signature_1",
                    "bitcoin_signature_2",
                ] {
                    same(f, f);
                }
            }
            Gossip::NodeAnnouncement(n) => {
                for f in ["signature", "features", "timestamp", "node_id", "rgb_color", "alias"] {
                    same(f, f);
                }
                let addrs: Vec<Value> = n
                    .addresses
                    .iter()
                    .map(|a| serde_json::json!([a.address, a.port]))
                    .collect();
                assert_eq!(Value::from(addrs), py["addresses"], "addresses of {}", hex::encode(m));
            }
            Gossip::ChannelUpdate(u) => {
                same("short_channel_id", "scid");
                for f in [
                    "signature",
                    "chain_hash",
                    "timestamp",
                    "cltv_expiry_delta",
                    "htlc_minimum_msat",
                    "htlc_maximum_msat",
                    "fee_base_msat",
                    "fee_proportional_millionths",
                    "inbound_fee_base_msat",
                    "inbound_fee_proportional_millionths",
                ] {
                    same(f, f);
                }
                assert_eq!(py["message_flags"], format!("{:02x}", u.message_flags));
                assert_eq!(py["channel_flags"], format!("{:02x}", u.channel_flags));
            }
            _ => continue,
        }
        compared += 1;
    }
    assert_eq!(
        compared,
        104 + 6,
        "every BOLT #7 message of the sample and of valid.hex"
    );
    eprintln!(
        "lnhistoryclient agrees on {} gossip_ids and on the fields of {compared} messages",
        msgs.len()
    );
}
