//! Relay URL normalisation on the 8,865 real relay URLs of `fixtures/nostr/seed_relays.txt` (BigBrotr's
//! seed list; provenance in `fixtures/nostr/README.md`): normalising is idempotent on every line, the
//! spellings of one relay (case, default port, trailing slashes, query, fragment) become one, and the
//! lines that are not archivable relays are counted by reason.
#![cfg(feature = "nostr")]

use proptest::prelude::*;
use std::collections::BTreeMap;
use tributary_sources::nostr::{Network, RelayUrl};

fn seeds() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/nostr/seed_relays.txt");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().map(str::to_owned).collect()
}

#[test]
fn normalising_the_real_seed_list_is_idempotent_and_invalid_lines_have_reasons() {
    let lines = seeds();
    assert_eq!(lines.len(), 8865, "the fixture is the whole seed list");
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut networks: BTreeMap<Network, usize> = BTreeMap::new();
    let mut distinct = std::collections::HashSet::new();
    for line in &lines {
        match RelayUrl::parse(line, false) {
            Ok(url) => {
                let again = RelayUrl::parse(url.as_str(), false).expect("a normal form parses");
                assert_eq!(again, url, "{line}: normalising is not idempotent");
                *networks.entry(url.network()).or_default() += 1;
                distinct.insert(url);
            }
            Err(e) => *reasons.entry(e.reason()).or_default() += 1,
        }
        // Allowing private networks refuses only what is malformed.
        if let Err(e) = RelayUrl::parse(line, true) {
            assert_ne!(e.reason(), "private", "{line}");
        }
    }
    let valid: usize = networks.values().sum();
    let invalid: usize = reasons.values().sum();
    eprintln!(
        "{valid} relays ({} distinct) by network {networks:?}; {invalid} refused by reason {reasons:?}",
        distinct.len()
    );
    assert_eq!(valid + invalid, lines.len());
    // The fixture is fixed, so are the counts: a change of the rules shows here. 1,389 lines are
    // loopback, private or CGNAT addresses (home and Tailscale relays), one is not an address at all
    // (`wss://100.127.36.484/8:4848`).
    assert_eq!(networks.get(&Network::Clearnet), Some(&6540));
    assert_eq!(networks.get(&Network::Tor), Some(&935));
    assert_eq!(reasons.get("private"), Some(&1389));
    assert_eq!(reasons.get("host"), Some(&1));
    assert_eq!(distinct.len(), 7472, "three lines repeat a relay once normalised");
    assert!(
        reasons
            .keys()
            .all(|r| ["scheme", "userinfo", "host", "port", "private", "garbled"].contains(r))
    );
}

/// A real URL respelled: the scheme and host in random case, the default port added, slashes, a query
/// and a fragment appended.
fn respelled(url: &str, upper: &[bool], port: bool, slashes: usize, query: bool, fragment: bool) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let case = |s: &str, offset: usize| -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if upper[(i + offset) % upper.len()] {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    };
    let mut out = format!("{}://{}", case(scheme, 0), case(authority, 3));
    if port && !authority.contains(':') && !authority.starts_with('[') {
        out.push_str(if scheme == "wss" { ":443" } else { ":80" });
    }
    out.push_str(path);
    out.push_str(&"/".repeat(slashes));
    if query {
        out.push_str("?since=0");
    }
    if fragment {
        out.push_str("#x");
    }
    out
}

proptest! {
    #[test]
    fn every_spelling_of_a_real_relay_normalises_to_it(
        i in 0usize..8865,
        upper in proptest::collection::vec(any::<bool>(), 1..8),
        port in any::<bool>(),
        slashes in 0usize..3,
        query in any::<bool>(),
        fragment in any::<bool>(),
    ) {
        let lines = seeds();
        if let Ok(url) = RelayUrl::parse(&lines[i], false) {
            let spelled = respelled(url.as_str(), &upper, port, slashes, query, fragment);
            let again = RelayUrl::parse(&spelled, false);
            prop_assert_eq!(again.as_ref().ok(), Some(&url), "{} spelled {}", url, spelled);
        }
    }
}
