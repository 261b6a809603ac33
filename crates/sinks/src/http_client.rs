//! The one guarded outbound HTTP client. Every request a sink sends goes through [`GuardedClient`].
//!
//! Guarantees (after Svix `webhook_http_client.rs`):
//! - a connect timeout and a whole-request timeout (connect, send, response head and body);
//! - keep-alive pooling per client (one client per sink, so per subscription);
//! - redirects are never followed: a 3xx comes back as a response and the sink treats it as a failure;
//! - no proxy from the environment (a proxy would resolve names where the guard cannot see them);
//! - an SSRF guard: names are resolved by [`GuardedResolver`] and IP-literal URLs are checked before
//!   sending; private, loopback, link-local, unspecified, CGNAT, documentation, benchmarking, multicast,
//!   broadcast and reserved addresses (IPv4, IPv6, and IPv4 embedded in IPv6: mapped, NAT64, 6to4,
//!   ISATAP; IPv4-translated, local-use NAT64 and Teredo refused outright) are refused unless the sink
//!   sets `allow_private_networks`. The full list is in `docs/sinks/webhook.md`.
//!   Only the addresses that pass are connected to, so a name cannot be re-resolved around the check.

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::SinkError;

/// How much of a response body is kept for reports.
pub const EXCERPT_LIMIT: usize = 1024;
/// How much of a response body is read (and discarded) so the connection can go back to the pool.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Settings of one guarded client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// Limit for establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit for the whole request, from connecting to the end of the response body.
    pub request_timeout: Duration,
    /// Allow private, loopback and other internal addresses.
    pub allow_private_networks: bool,
}

/// An HTTP client with timeouts, no redirects and the SSRF guard.
#[derive(Clone, Debug)]
pub struct GuardedClient {
    inner: reqwest::Client,
    config: HttpClientConfig,
}

/// A response as the guarded client returns it.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The first [`EXCERPT_LIMIT`] bytes of the body.
    pub body_start: Bytes,
}

/// An address the SSRF guard refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("address {ip} is {reason}")]
pub struct RefusedAddress {
    /// The refused address.
    pub ip: IpAddr,
    /// Why (`private`, `loopback`, …).
    pub reason: &'static str,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The SSRF guard refused the destination. Permanent until the config changes.
    #[error("{url}: {refused}; set allow_private_networks = true on the subscription sink to allow it")]
    Refused {
        /// The request URL (password removed).
        url: String,
        /// The refused address.
        #[source]
        refused: RefusedAddress,
    },
    /// The connection was not established in time.
    #[error("timed out after {} connecting to {url}", humantime::format_duration(*.after))]
    ConnectTimeout {
        /// The request URL (password removed).
        url: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The response did not arrive in time.
    #[error("timed out after {} waiting for {url}", humantime::format_duration(*.after))]
    Timeout {
        /// The request URL (password removed).
        url: String,
        /// The request timeout.
        after: Duration,
    },
    /// The connection failed (DNS, refused, reset, TLS).
    #[error("could not connect to {url}: {detail}")]
    Connect {
        /// The request URL (password removed).
        url: String,
        /// The error chain, flattened.
        detail: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The request failed after connecting.
    #[error("request to {url} failed: {detail}")]
    Request {
        /// The request URL (password removed).
        url: String,
        /// The error chain, flattened.
        detail: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
}

impl HttpError {
    /// Whether trying again later may succeed (everything but an SSRF refusal).
    pub fn is_retriable(&self) -> bool {
        !matches!(self, HttpError::Refused { .. })
    }
}

impl GuardedClient {
    /// Builds a client. Installs the `ring` rustls crypto provider if no provider is installed yet.
    pub fn new(config: HttpClientConfig) -> Result<Self, SinkError> {
        // Fails only when a provider is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inner = reqwest::Client::builder()
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .dns_resolver(GuardedResolver {
                allow_private_networks: config.allow_private_networks,
            })
            .build()
            .map_err(SinkError::Client)?;
        Ok(Self { inner, config })
    }

    /// The client's settings.
    pub fn config(&self) -> &HttpClientConfig {
        &self.config
    }

    /// POSTs `body` with `headers` to `url`, refusing guarded addresses, never following redirects. Reads
    /// the response body far enough to keep its start; a body that fails after the status line arrived does
    /// not turn the response into an error.
    pub async fn post(&self, url: &Url, headers: HeaderMap, body: Bytes) -> Result<HttpResponse, HttpError> {
        if !self.config.allow_private_networks {
            // reqwest skips the resolver for IP literals, so check them here.
            if let Some(ip) = literal_ip(url)
                && let Some(reason) = refused_reason(ip)
            {
                return Err(HttpError::Refused {
                    url: shown_url(url),
                    refused: RefusedAddress { ip, reason },
                });
            }
        }
        let sent = self.inner.post(url.clone()).headers(headers).body(body).send().await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return Err(self.classify_error(url, error)),
        };
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut start = Vec::new();
        let mut read = 0usize;
        while read < DRAIN_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    let room = EXCERPT_LIMIT.saturating_sub(start.len());
                    start.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok(HttpResponse {
            status,
            headers,
            body_start: Bytes::from(start),
        })
    }

    fn classify_error(&self, url: &Url, error: reqwest::Error) -> HttpError {
        let url_shown = shown_url(url);
        if let Some(refused) = find_in_chain::<RefusedAddress>(&error) {
            return HttpError::Refused {
                url: url_shown,
                refused: refused.clone(),
            };
        }
        if error.is_timeout() {
            return if error.is_connect() {
                HttpError::ConnectTimeout {
                    url: url_shown,
                    after: self.config.connect_timeout,
                }
            } else {
                HttpError::Timeout {
                    url: url_shown,
                    after: self.config.request_timeout,
                }
            };
        }
        let error = error.without_url();
        // The top level only says "error sending request"; the causes say what happened.
        let detail = error_chain(error.source().unwrap_or(&error));
        if error.is_connect() {
            HttpError::Connect {
                url: url_shown,
                detail,
                source: error,
            }
        } else {
            HttpError::Request {
                url: url_shown,
                detail,
                source: error,
            }
        }
    }
}

/// A URL for messages: the password, if any, replaced by `***`.
pub fn shown_url(url: &Url) -> String {
    if url.password().is_some() {
        let mut url = url.clone();
        let _ = url.set_password(Some("***"));
        url.to_string()
    } else {
        url.to_string()
    }
}

/// The SSRF guard's verdict on a URL's host, decided without resolving anything: an IP literal is judged
/// by [`refused_reason`], `localhost` and `*.localhost` (RFC 6761) are loopback, and any other name is
/// `None` here (the guard judges its addresses when it resolves them, at delivery). Returns the host as
/// written and why it is refused.
pub fn refused_host(url: &Url) -> Option<(String, &'static str)> {
    let host = url.host_str()?;
    if let Some(ip) = literal_ip(url) {
        return refused_reason(ip).map(|reason| (host.to_owned(), reason));
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost")).then(|| (host.to_owned(), "loopback"))
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    // The URL parser has already normalised IPv4 forms (`http://2130706433/`) to dotted quads.
    let host = url.host_str()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.parse().ok()
}

fn find_in_chain<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The messages of an error and its sources joined with `: `, repeats dropped.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let message = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&message)) {
            parts.push(message);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Resolves names with the system resolver and drops refused addresses; fails when none is left.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    /// Pass every address through.
    pub allow_private_networks: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private_networks;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow {
                return Ok(Box::new(resolved.into_iter()) as Addrs);
            }
            let mut first_refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match refused_reason(addr.ip()) {
                    None => true,
                    Some(reason) => {
                        first_refused.get_or_insert(RefusedAddress { ip: addr.ip(), reason });
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_refused) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
                (true, Some(refused)) => Err(Box::new(refused) as Box<dyn StdError + Send + Sync>),
                (true, None) => Err(Box::new(NoAddresses(host)) as Box<dyn StdError + Send + Sync>),
            }
        })
    }
}

#[derive(Debug)]
struct NoAddresses(String);

impl fmt::Display for NoAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolved to no addresses", self.0)
    }
}

impl StdError for NoAddresses {}

/// Why the SSRF guard refuses `ip`, or `None` for a public address.
pub fn refused_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip),
        IpAddr::V6(ip) => refused_v6(ip),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        Some("unspecified (0.0.0.0/8, \"this network\")")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("in the shared CGNAT range 100.64.0.0/10")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113) {
        Some("in an IPv4 documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("in the benchmarking range 198.18.0.0/15")
    } else if (a, b, c) == (192, 0, 0) {
        Some("in the IETF protocol assignments range 192.0.0.0/24")
    } else if (a, b, c) == (192, 88, 99) {
        Some("in the deprecated 6to4 relay anycast range 192.88.99.0/24")
    } else if a >= 240 {
        Some("reserved (240.0.0.0/4)")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-mapped ::ffff:a.b.c.d: the system connects to the IPv4 address itself.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(seg[6], seg[7]));
    }
    // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): a translator inside the operator's network.
    if seg[..3] == [0x64, 0xff9b, 1] {
        return Some("in the local-use NAT64 range 64:ff9b:1::/48");
    }
    // 6to4 2002::/16 tunnels to the IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        return refused_v4(embedded(seg[1], seg[2]));
    }
    // ISATAP interface ids (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d) tunnel to the embedded IPv4 address.
    if (seg[4] & 0xfdff) == 0
        && seg[5] == 0x5efe
        && let Some(reason) = refused_v4(embedded(seg[6], seg[7]))
    {
        return Some(reason);
    }
    match seg[0] {
        // ::/8 beyond loopback and mapped: IPv4-compatible ::a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d
        // (SIIT), and the rest of the reserved block.
        s if s >> 8 == 0 => Some("reserved (::/8: IPv4-compatible, IPv4-translated or unassigned)"),
        0x0100 if seg[1..4] == [0, 0, 0] => Some("in the discard-only range 100::/64"),
        // 2001::/23: Teredo 2001::/32 (tunnels to an obfuscated IPv4 address), benchmarking 2001:2::/48,
        // ORCHID, and the other IETF special-purpose blocks.
        0x2001 if seg[1] < 0x0200 => Some("in the IETF special-purpose range 2001::/23 (Teredo, benchmarking, ORCHID)"),
        0x2001 if seg[1] == 0x0db8 => Some("in the IPv6 documentation range 2001:db8::/32"),
        0x3fff if seg[1] & 0xf000 == 0 => Some("in the IPv6 documentation range 3fff::/20"),
        0x5f00 => Some("in the SRv6 SID range 5f00::/16"),
        s if (s & 0xfe00) == 0xfc00 => Some("unique-local (private, fc00::/7)"),
        s if (s & 0xffc0) == 0xfe80 => Some("link-local"),
        s if (s & 0xffc0) == 0xfec0 => Some("site-local (private, fec0::/10)"),
        s if (s & 0xff00) == 0xff00 => Some("multicast"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_judged_without_resolving() {
        let host = |u: &str| refused_host(&Url::parse(u).unwrap());
        assert_eq!(host("http://127.0.0.1:9/hook"), Some(("127.0.0.1".into(), "loopback")));
        assert_eq!(host("http://LOCALHOST./x"), Some(("localhost.".into(), "loopback")));
        assert_eq!(
            host("http://api.localhost/x"),
            Some(("api.localhost".into(), "loopback"))
        );
        assert_eq!(host("http://[::1]/x"), Some(("[::1]".into(), "loopback")));
        assert_eq!(host("http://10.1.2.3/x"), Some(("10.1.2.3".into(), "private")));
        assert_eq!(host("http://2130706433/x"), Some(("127.0.0.1".into(), "loopback")));
        // Public literals and names pass here; names are judged when resolved, at delivery.
        assert_eq!(host("https://93.184.215.14/x"), None);
        assert_eq!(host("https://example.com/x"), None);
        assert_eq!(host("https://localhost.example.com/x"), None);
    }

    fn verdict(ip: &str) -> Option<&'static str> {
        refused_reason(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
    }

    #[test]
    fn ssrf_guard_refuses_internal_ranges() {
        let refused = [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",
            "2002:c0a8:0101::1",
        ];
        for ip in refused {
            assert!(verdict(ip).is_some(), "{ip} should be refused");
        }
        let allowed = [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ];
        for ip in allowed {
            assert_eq!(verdict(ip), None, "{ip} should be allowed");
        }
        assert_eq!(verdict("10.0.0.5"), Some("private"));
        assert_eq!(verdict("::ffff:127.0.0.1"), Some("loopback"));
    }

    /// The gaps found in the hardening review (issue 7, item 13), each with the reason it is refused for.
    #[test]
    fn ssrf_guard_closes_the_reviewed_gaps() {
        let cases = [
            // IPv4-translated (SIIT) ::ffff:0:a.b.c.d, private and public embedded addresses alike.
            ("::ffff:0:7f00:1", "reserved"),
            ("::ffff:0:a00:1", "reserved"),
            ("::ffff:0:808:808", "reserved"),
            // IPv4-compatible ::a.b.c.d.
            ("::7f00:1", "reserved"),
            ("::808:808", "reserved"),
            // Local-use NAT64, whatever it embeds.
            ("64:ff9b:1::808:808", "local-use NAT64"),
            ("64:ff9b:1:ffff::1", "local-use NAT64"),
            // Well-known NAT64 with private, loopback, link-local, CGNAT embedded addresses.
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::c0a8:101", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b::6440:1", "CGNAT"),
            // IPv4 documentation and benchmarking ranges.
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.255", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.88.99.1", "6to4 relay"),
            // Multicast and broadcast.
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("ff05::2", "multicast"),
            ("ff0e::1", "multicast"),
            // 0.0.0.0/8, 100.64/10, 240/4.
            ("0.1.2.3", "unspecified"),
            ("100.127.255.255", "CGNAT"),
            ("250.1.1.1", "reserved"),
            // 6to4 embedding private and loopback addresses.
            ("2002:a00:1::1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
            // Teredo and the rest of 2001::/23.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "ORCHID"),
            // Documentation, discard, SRv6.
            ("2001:db8::1", "documentation"),
            ("3fff:0fff::1", "documentation"),
            ("100::1", "discard-only"),
            ("5f00::1", "SRv6"),
            // Unique-local, link-local, site-local.
            ("fc00::1", "unique-local"),
            ("fdff:ffff::1", "unique-local"),
            ("fe80::1:2", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("feff::1", "site-local"),
            // ISATAP interface ids with a private embedded address.
            ("2a00:1450::5efe:a00:1", "private"),
            ("2a00:1450::200:5efe:c0a8:1", "private"),
            // Mapped private addresses.
            ("::ffff:192.168.0.1", "private"),
            ("::ffff:198.18.0.1", "benchmarking"),
        ];
        for (ip, reason) in cases {
            match verdict(ip) {
                Some(r) => assert!(r.contains(reason), "{ip}: refused as {r:?}, expected {reason:?}"),
                None => panic!("{ip} should be refused ({reason})"),
            }
        }
        // Public addresses, also when embedded or tunnelled, stay allowed.
        for ip in [
            "8.8.8.8",
            "192.0.3.1",
            "198.20.0.1",
            "198.51.101.1",
            "203.0.114.1",
            "223.255.255.255",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2a00:1450::5efe:808:808",
            "3fff:1000::1",
            "2400:cb00::1",
        ] {
            assert_eq!(verdict(ip), None, "{ip} should be allowed");
        }
    }
}
