//! The one guarded outbound HTTP client. Every request a sink sends goes through [`GuardedClient`].
//!
//! Guarantees (after Svix `webhook_http_client.rs`):
//! - a connect timeout and a whole-request timeout (connect, send, response head and body);
//! - keep-alive pooling per client (one client per sink, so per subscription);
//! - redirects are never followed: a 3xx comes back as a response and the sink treats it as a failure;
//! - no proxy from the environment (a proxy would resolve names where the guard cannot see them);
//! - an SSRF guard: names are resolved by [`GuardedResolver`] and IP-literal URLs are checked before
//!   sending; private, loopback, link-local, unspecified, CGNAT, multicast, broadcast and reserved addresses
//!   (IPv4, IPv6, and IPv4 embedded in IPv6) are refused unless the sink sets `allow_private_networks`.
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
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
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
    } else if a >= 240 || (a == 192 && b == 0 && c == 0) || (a == 198 && (b & 0xfe) == 18) {
        Some("reserved")
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
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    // Deprecated IPv4-compatible ::a.b.c.d.
    if seg[..6].iter().all(|&s| s == 0) {
        return refused_v4(embedded(seg[6], seg[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(seg[6], seg[7]));
    }
    // 6to4 2002::/16 tunnels to the IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        return refused_v4(embedded(seg[1], seg[2]));
    }
    match seg[0] {
        s if (s & 0xfe00) == 0xfc00 => Some("unique-local (private)"),
        s if (s & 0xffc0) == 0xfe80 => Some("link-local"),
        s if (s & 0xffc0) == 0xfec0 => Some("site-local (private)"),
        s if (s & 0xff00) == 0xff00 => Some("multicast"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let ip: IpAddr = ip.parse().unwrap();
            assert!(refused_reason(ip).is_some(), "{ip} should be refused");
        }
        let allowed = [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ];
        for ip in allowed {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refused_reason(ip), None, "{ip} should be allowed");
        }
        assert_eq!(refused_reason("10.0.0.5".parse().unwrap()), Some("private"));
        assert_eq!(refused_reason("::ffff:127.0.0.1".parse().unwrap()), Some("loopback"));
    }
}
