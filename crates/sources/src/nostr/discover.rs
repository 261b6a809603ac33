//! Relay discovery (`discover = true`): relay URLs named by the events archived — kind 10002 relay
//! lists (NIP-65 `r` tags), kind 3 contact lists (the relays object of their content, as older clients
//! write it) and relay hints (the third item of `e`, `p`, `a` and `q` tags). The source normalises them
//! ([`super::RelayUrl`]), drops the known ones and connects to new ones within `max_relays`.

use super::NostrEvent;

/// Most URLs taken from one event (a list holding more is cut).
const PER_EVENT: usize = 64;

/// The relay URLs `events` name, as written (not yet normalised).
pub fn relay_urls(events: &[NostrEvent]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        let before = out.len();
        let mut add = |s: &str| {
            if out.len() - before < PER_EVENT && !s.is_empty() && s.len() <= 2048 {
                out.push(s.to_owned());
            }
        };
        match e.kind {
            10002 => (e.tags.iter())
                .filter(|t| t.first().is_some_and(|n| n == "r"))
                .filter_map(|t| t.get(1))
                .for_each(|u| add(u)),
            3 => {
                if let Ok(serde_json::Value::Object(relays)) = serde_json::from_str(&e.content) {
                    relays.keys().for_each(|u| add(u));
                }
            }
            _ => {}
        }
        (e.tags.iter())
            .filter(|t| t.first().is_some_and(|n| matches!(n.as_str(), "e" | "p" | "a" | "q")))
            .filter_map(|t| t.get(2))
            .for_each(|u| add(u));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, tags: &[&[&str]], content: &str) -> NostrEvent {
        NostrEvent {
            id: [0; 32],
            pubkey: [0; 32],
            created_at: 0,
            kind,
            tags: tags.iter().map(|t| t.iter().map(|s| s.to_string()).collect()).collect(),
            content: content.into(),
            sig: [0; 64],
        }
    }

    #[test]
    fn relay_lists_contact_lists_and_hints() {
        let urls = relay_urls(&[
            event(
                10002,
                &[
                    &["r", "wss://a.example.com", "read"],
                    &["r", "wss://b.example.com"],
                    &["p", "x"],
                ],
                "",
            ),
            event(
                3,
                &[&["p", "ab", "wss://hint.example.com"]],
                r#"{"wss://c.example.com": {"read": true}}"#,
            ),
            event(
                1,
                &[
                    &["e", "cd", "wss://d.example.com", "reply"],
                    &["e", "ef", ""],
                    &["t", "x", "wss://no"],
                ],
                "{}",
            ),
            event(3, &[], "not json"),
        ]);
        assert_eq!(
            urls,
            [
                "wss://a.example.com",
                "wss://b.example.com",
                "wss://c.example.com",
                "wss://hint.example.com",
                "wss://d.example.com"
            ]
        );
        let many: Vec<Vec<String>> = (0..1000)
            .map(|i| vec!["r".into(), format!("wss://r{i}.example.com")])
            .collect();
        let mut e = event(10002, &[], "");
        e.tags = many;
        assert_eq!(relay_urls(&[e]).len(), PER_EVENT);
    }
}
