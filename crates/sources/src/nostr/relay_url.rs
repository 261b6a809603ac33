//! Relay URLs as the archive keys them (issue 11): one spelling per relay, so that the same relay met in
//! a config, a seed file, a kind 10002 list or a relay hint is one relay, one cursor and one observer.
//!
//! The normal form: scheme `ws` or `wss` (lowercase), the host lowercased, the default port dropped
//! (80 for `ws`, 443 for `wss`), the path kept without its trailing slashes, no query, no fragment, no
//! user or password. Normalising a normal form gives it back unchanged.
//!
//! Refused, each with its reason: another scheme, a user or password, a missing, malformed or
//! non-ASCII host (write it in punycode), a bad port, and — unless private networks are allowed —
//! loopback, private, link-local and other local addresses and names. `.onion`, `.i2p` and `.loki`
//! hosts are classified as such (they need a proxy to be reached).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The network a relay is reached over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// The public internet.
    Clearnet,
    /// A Tor onion service (`.onion`).
    Tor,
    /// An I2P eepsite (`.i2p`).
    I2p,
    /// A Lokinet address (`.loki`).
    Loki,
    /// A loopback, private or local address (only with `allow_private_networks`).
    Local,
}

/// A relay URL in its normal form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayUrl {
    url: String,
    network: Network,
}

/// Why a line is not a relay URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayUrlError {
    /// Not `ws://` or `wss://`.
    #[error("{0:?} is not a ws:// or wss:// URL")]
    Scheme(String),
    /// A user or password before the host.
    #[error("{0:?} has a user or password; relay URLs carry none")]
    Userinfo(String),
    /// No host, or one that is not a host name or address.
    #[error("{url:?}: {why}")]
    Host {
        /// The input.
        url: String,
        /// What is wrong with the host.
        why: &'static str,
    },
    /// A port that is not 1 to 65535.
    #[error("{0:?} has a port that is not 1 to 65535")]
    Port(String),
    /// A loopback, private or local host while private networks are not allowed.
    #[error("{url:?}: the host is {why}; set allow_private_networks = true to archive a local relay")]
    Private {
        /// The input.
        url: String,
        /// Which kind of address.
        why: &'static str,
    },
    /// Whitespace or control characters inside, or an empty line.
    #[error("{0:?} is empty or holds spaces or control characters")]
    Garbled(String),
}

impl RelayUrlError {
    /// A short name of the reason, for counting (`scheme`, `userinfo`, `host`, `port`, `private`, `garbled`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Scheme(_) => "scheme",
            Self::Userinfo(_) => "userinfo",
            Self::Host { .. } => "host",
            Self::Port(_) => "port",
            Self::Private { .. } => "private",
            Self::Garbled(_) => "garbled",
        }
    }
}

/// The longest URL accepted (longer ones are garbage, not relays).
const MAX_LEN: usize = 2048;

impl RelayUrl {
    /// Normalises `input` (see the module docs); `allow_private` lets loopback, private and local hosts
    /// through, classified [`Network::Local`].
    pub fn parse(input: &str, allow_private: bool) -> Result<Self, RelayUrlError> {
        let shown = || input.chars().take(200).collect::<String>();
        let s = input.trim();
        if s.is_empty() || s.len() > MAX_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RelayUrlError::Garbled(shown()));
        }
        let (scheme, rest) = s.split_once("://").ok_or_else(|| RelayUrlError::Scheme(shown()))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "ws" => 80,
            "wss" => 443,
            _ => return Err(RelayUrlError::Scheme(shown())),
        };
        // The authority ends at the first '/', '?' or '#'; what follows '?' or '#' is dropped.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let path = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
        if authority.contains('@') {
            return Err(RelayUrlError::Userinfo(shown()));
        }
        let host_err = |why| RelayUrlError::Host { url: shown(), why };
        let (host, port) =
            split_host_port(authority).ok_or_else(|| host_err("the host and port cannot be told apart"))?;
        let port = match port {
            None => None,
            Some(p) => {
                let n: u16 = (p.len() <= 5 && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse().ok())
                    .flatten()
                    .ok_or_else(|| RelayUrlError::Port(shown()))?;
                if n == 0 {
                    return Err(RelayUrlError::Port(shown()));
                }
                (n != default_port).then_some(n)
            }
        };
        let (host, network, local) = classify(host).map_err(host_err)?;
        if let Some(why) = local
            && !allow_private
        {
            return Err(RelayUrlError::Private { url: shown(), why });
        }
        let path = path.trim_end_matches('/');
        if path.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(host_err(
                "the path holds characters that are not printable ASCII (percent-encode them)",
            ));
        }
        let mut url = format!("{scheme}://{host}");
        if let Some(p) = port {
            url.push_str(&format!(":{p}"));
        }
        url.push_str(path);
        Ok(Self { url, network })
    }

    /// The normal form.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The network it is reached over.
    pub fn network(&self) -> Network {
        self.network
    }
}

impl std::fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.split_once(':') {
        None => Some((authority, None)),
        Some((_, p)) if p.contains(':') => None,
        Some((h, p)) => Some((h, Some(p))),
    }
}

/// The host in its normal form (lowercase, IPv6 in brackets), its network, and why it is local if it is.
fn classify(host: &str) -> Result<(String, Network, Option<&'static str>), &'static str> {
    if host.is_empty() {
        return Err("no host");
    }
    if !host.is_ascii() {
        return Err("the host is not ASCII; write it in punycode (xn--…)");
    }
    let lower = host.to_ascii_lowercase();
    if let Ok(v6) = lower.parse::<Ipv6Addr>() {
        let local = local_ip(IpAddr::V6(v6));
        let network = if local.is_some() {
            Network::Local
        } else {
            Network::Clearnet
        };
        return Ok((format!("[{v6}]"), network, local));
    }
    if lower.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let v4: Ipv4Addr = lower
            .parse()
            .map_err(|_| "the host looks like an IPv4 address but is not one")?;
        let local = local_ip(IpAddr::V4(v4));
        let network = if local.is_some() {
            Network::Local
        } else {
            Network::Clearnet
        };
        return Ok((v4.to_string(), network, local));
    }
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.len() > 253 {
        return Err("the host name is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("the host name has an empty label or one longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label of the host name starts or ends with '-'");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("the host name holds characters other than letters, digits, '-' and '_'");
        }
    }
    let tld = name.rsplit('.').next().unwrap_or("");
    let (network, local) = match tld {
        "onion" => (Network::Tor, None),
        "i2p" => (Network::I2p, None),
        "loki" => (Network::Loki, None),
        "localhost" => (Network::Local, Some("loopback (localhost)")),
        "local" | "lan" | "internal" | "home" | "localdomain" => (Network::Local, Some("a local network name")),
        _ if !name.contains('.') => (Network::Local, Some("a name without a domain (a local host)")),
        _ => (Network::Clearnet, None),
    };
    Ok((name.to_owned(), network, local))
}

/// Why an address is not on the public internet, if it is not.
pub(crate) fn local_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified (0.0.0.0/8)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared address space (CGNAT, 100.64.0.0/10)")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("multicast, broadcast or reserved")
            } else if v4.is_documentation() || (a == 198 && (18..20).contains(&b)) {
                Some("documentation or benchmarking")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return local_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("unique-local (private, fc00::/7)")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local (fe80::/10)")
            } else if (first & 0xff00) == 0xff00 {
                Some("multicast")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("documentation (2001:db8::/32)")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        RelayUrl::parse(s, false).unwrap().to_string()
    }

    #[test]
    fn spellings_of_one_relay_become_one() {
        for s in [
            "wss://relay.damus.io",
            "WSS://Relay.Damus.IO/",
            "wss://relay.damus.io:443",
            "wss://relay.damus.io/?x=1#frag",
            "  wss://relay.damus.io//  ",
            "wss://relay.damus.io.",
        ] {
            assert_eq!(norm(s), "wss://relay.damus.io", "{s}");
        }
        assert_eq!(norm("ws://nostr.example.com:80/relay/"), "ws://nostr.example.com/relay");
        assert_eq!(norm("wss://nostr.example.com:4848"), "wss://nostr.example.com:4848");
        assert_eq!(
            norm("ws://nostr.example.com:443"),
            "ws://nostr.example.com:443",
            "443 is not ws's default"
        );
        assert_eq!(norm("wss://[2606:4700::6810:1]:443/"), "wss://[2606:4700::6810:1]");
        assert_eq!(norm("wss://51.154.60.99:4848"), "wss://51.154.60.99:4848");
    }

    #[test]
    fn networks_are_classified() {
        let net = |s: &str| RelayUrl::parse(s, false).unwrap().network();
        assert_eq!(net("wss://abcdefghijklmnop.onion"), Network::Tor);
        assert_eq!(net("ws://relay.i2p"), Network::I2p);
        assert_eq!(net("ws://relay.loki"), Network::Loki);
        assert_eq!(net("wss://nos.lol"), Network::Clearnet);
        assert_eq!(
            RelayUrl::parse("ws://127.0.0.1:7777", true).unwrap().network(),
            Network::Local
        );
    }

    #[test]
    fn bad_and_local_urls_are_refused_with_a_reason() {
        let reason = |s: &str| RelayUrl::parse(s, false).unwrap_err().reason();
        assert_eq!(reason("https://relay.example.com"), "scheme");
        assert_eq!(reason("relay.example.com"), "scheme");
        assert_eq!(reason("wss://user:pw@relay.damus.io"), "userinfo");
        assert_eq!(reason("wss://"), "host");
        assert_eq!(reason("wss://relay..io"), "host");
        assert_eq!(reason("wss://-bad.io"), "host");
        assert_eq!(reason("wss://rélay.io"), "host");
        assert_eq!(reason("wss://999.1.1.1"), "host");
        assert_eq!(reason("wss://relay.io:0"), "port");
        assert_eq!(reason("wss://relay.io:70000"), "port");
        assert_eq!(reason("wss://relay.io:"), "port");
        assert_eq!(reason("wss://relay .io"), "garbled");
        assert_eq!(reason(""), "garbled");
        for local in [
            "ws://127.0.0.1:7777",
            "ws://localhost:7777",
            "ws://nostr.localhost",
            "wss://10.100.1.3:4848",
            "wss://192.168.1.2",
            "wss://[::1]",
            "wss://[fd00::1]",
            "wss://[::ffff:127.0.0.1]",
            "wss://100.64.0.1",
            "ws://myrelay",
            "ws://relay.local",
        ] {
            assert_eq!(reason(local), "private", "{local}");
            assert!(
                RelayUrl::parse(local, true).is_ok(),
                "{local} with allow_private_networks"
            );
        }
    }

    #[test]
    fn the_normal_form_is_its_own_normal_form() {
        for s in [
            "WSS://A.B/c/",
            "ws://x.io:80",
            "wss://[2606:4700::1]:8443/p?q",
            "ws://relay.i2p/",
        ] {
            let once = RelayUrl::parse(s, false).unwrap();
            assert_eq!(RelayUrl::parse(once.as_str(), false).unwrap(), once, "{s}");
        }
    }
}
