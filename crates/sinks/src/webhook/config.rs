//! [`WebhookConfig`]: what a subscription's `sink = { type = "webhook", … }` says, and how it is checked.

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use tributary_core::Timestamp;

use super::payload::PayloadFormat;
use super::signing::WebhookSecret;
use super::sink::WebhookSink;
use crate::http_client::{GuardedClient, HttpClientConfig};
use crate::{SinkContext, SinkError};

/// Headers the sink sets itself; `headers` may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// A Standard Webhooks endpoint.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint, `http://` or `https://`. Redirects are not followed.
    pub url: String,
    /// The signing secret, `whsec_` + base64 of at least 24 random bytes. When absent the engine generates
    /// one, persists it and passes it in the [`SinkContext`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Earlier secrets still signing during a rotation: until `expires_at`, every delivery carries one
    /// signature per live secret, so receivers can switch at their own pace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_secrets: Vec<PreviousSecret>,
    /// Extra headers sent with every delivery (for example an `authorization` the receiver wants). May not
    /// override the `webhook-*` headers, `content-type` or connection headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Limit for one whole attempt, connecting included (`"15s"`, `"1m"`).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Limit for establishing the connection (`"10s"`).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Allow private, loopback, link-local and other internal addresses (needed for a receiver on
    /// `127.0.0.1` or in the same private network). Off by default: the SSRF guard refuses them.
    #[serde(default)]
    pub allow_private_networks: bool,
    /// The body format: `standard` (default), `platform_event` (ln-history's `PlatformEvent` for `ln.*`
    /// events; see [`payload`](super::payload)) or `ethhook` (EthHook's flat JSON for `evm.*` events).
    #[serde(default, skip_serializing_if = "PayloadFormat::is_standard")]
    pub payload: PayloadFormat,
}

/// A secret being rotated out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousSecret {
    /// The old secret, `whsec_…`.
    pub secret: String,
    /// When it stops signing (RFC 3339).
    pub expires_at: Timestamp,
}

/// Longest `url`, in bytes.
pub const MAX_URL: usize = 2048;
/// Most custom `headers`.
pub const MAX_HEADERS: usize = 32;
/// Longest custom header, name and value together, in bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most `previous_secrets`.
pub const MAX_PREVIOUS: usize = 16;
/// Longest `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest `connect_timeout`.
pub const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

impl WebhookConfig {
    /// A config for `url` with every other field at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: None,
            previous_secrets: Vec::new(),
            headers: BTreeMap::new(),
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            allow_private_networks: false,
            payload: PayloadFormat::Standard,
        }
    }

    /// Checks every field; the error names the field and the bad value (secrets are never echoed).
    /// Bounds: `url` at most 2,048 bytes; at most 32 `headers` of at most 8 KiB each; at most 16
    /// `previous_secrets`; `timeout` at most 5 minutes; `connect_timeout` at most 1 minute.
    pub fn problems(&self) -> Vec<SinkError> {
        let mut p = crate::Problems::default();
        p.check(|| {
            if self.url.len() > MAX_URL {
                return Err(SinkError::config(
                    "url",
                    format!("expected at most {MAX_URL} bytes, got {}", self.url.len()),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if self.headers.len() > MAX_HEADERS {
                return Err(SinkError::config(
                    "headers",
                    format!("expected at most {MAX_HEADERS} headers, got {}", self.headers.len()),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if let Some((name, _)) = self.headers.iter().find(|(k, v)| k.len() + v.len() > MAX_HEADER_BYTES) {
                return Err(SinkError::config(
                    format!("headers.{}", name.chars().take(64).collect::<String>()),
                    format!("expected a name and value of at most {MAX_HEADER_BYTES} bytes together"),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if self.previous_secrets.len() > MAX_PREVIOUS {
                return Err(SinkError::config(
                    "previous_secrets",
                    format!("expected at most {MAX_PREVIOUS}, got {}", self.previous_secrets.len()),
                ));
            }
            Ok(())
        });
        p.check(|| {
            self.checked_url()?;
            Ok(())
        });
        p.check(|| {
            if let Some(secret) = &self.secret {
                parse_secret("secret", secret)?;
            }
            Ok(())
        });
        p.check(|| {
            for (i, previous) in self.previous_secrets.iter().enumerate() {
                parse_secret(&format!("previous_secrets[{i}].secret"), &previous.secret)?;
            }
            Ok(())
        });
        p.check(|| {
            self.checked_headers()?;
            Ok(())
        });
        p.check(|| {
            if self.timeout.is_zero() {
                return Err(SinkError::config("timeout", "must be greater than zero"));
            }
            Ok(())
        });
        p.check(|| {
            if self.connect_timeout.is_zero() {
                return Err(SinkError::config("connect_timeout", "must be greater than zero"));
            }
            Ok(())
        });
        p.check(|| {
            if self.timeout > MAX_TIMEOUT {
                return Err(SinkError::config(
                    "timeout",
                    format!("expected at most 5m, got {:?}", self.timeout),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if self.connect_timeout > MAX_CONNECT_TIMEOUT {
                return Err(SinkError::config(
                    "connect_timeout",
                    format!("expected at most 1m, got {:?}", self.connect_timeout),
                ));
            }
            Ok(())
        });
        p.into_vec()
    }

    /// The first of [`problems`](Self::problems), if any.
    pub fn validate(&self) -> Result<(), SinkError> {
        crate::first_problem(self.problems())
    }

    /// Builds the sink. The config's `secret` wins; otherwise the context's generated one is used.
    pub fn build(&self, cx: SinkContext) -> Result<WebhookSink, SinkError> {
        self.validate()?;
        let url = self.checked_url()?;
        let secret = match (&self.secret, &cx.secret) {
            (Some(secret), _) => parse_secret("secret", secret)?,
            (None, Some(generated)) => parse_secret("generated secret", generated)?,
            (None, None) => {
                return Err(SinkError::config(
                    "secret",
                    "no secret configured and none generated; set secret = \"whsec_…\" or let the \
                     engine generate one",
                ));
            }
        };
        let previous = self
            .previous_secrets
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Ok((
                    parse_secret(&format!("previous_secrets[{i}].secret"), &p.secret)?,
                    p.expires_at,
                ))
            })
            .collect::<Result<Vec<_>, SinkError>>()?;
        let client = GuardedClient::new(HttpClientConfig {
            connect_timeout: self.connect_timeout,
            request_timeout: self.timeout,
            allow_private_networks: self.allow_private_networks,
        })?;
        Ok(WebhookSink::new(
            cx.subscription,
            url,
            client,
            secret,
            previous,
            self.checked_headers()?,
            self.payload,
        ))
    }

    /// What the SSRF guard will certainly refuse at delivery: with `allow_private_networks` off, a URL whose
    /// host is a refused IP literal or `localhost` (see [`refused_host`](crate::http_client::refused_host);
    /// nothing is resolved). The host as written and why.
    pub fn refused_destination(&self) -> Option<(String, &'static str)> {
        if self.allow_private_networks {
            return None;
        }
        crate::http_client::refused_host(&Url::parse(&self.url).ok()?)
    }

    fn checked_url(&self) -> Result<Url, SinkError> {
        let url = Url::parse(&self.url).map_err(|e| {
            SinkError::config(
                "url",
                format!("expected an http:// or https:// URL, got {:?} ({e})", self.url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SinkError::config(
                "url",
                format!("expected http:// or https://, got {:?}", self.url),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SinkError::config(
                "url",
                format!("expected a host in the URL, got {:?}", self.url),
            ));
        }
        Ok(url)
    }

    fn checked_headers(&self) -> Result<HeaderMap, SinkError> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let field = || format!("headers.{name}");
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SinkError::config(field(), format!("{name:?} is not a valid HTTP header name")))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(SinkError::config(
                    field(),
                    format!("{header} is set by the webhook sink itself and cannot be overridden"),
                ));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                SinkError::config(
                    field(),
                    "the value must be visible ASCII or spaces, without line breaks",
                )
            })?;
            map.insert(header, value);
        }
        Ok(map)
    }
}

impl crate::SinkType for WebhookConfig {
    fn type_name(&self) -> &'static str {
        "webhook"
    }

    fn problems(&self) -> Vec<SinkError> {
        WebhookConfig::problems(self)
    }

    fn build_sink(&self, cx: SinkContext) -> Result<std::sync::Arc<dyn tributary_core::Sink>, SinkError> {
        Ok(std::sync::Arc::new(self.build(cx)?))
    }

    fn refused_destination(&self) -> Option<(&'static str, String, &'static str)> {
        WebhookConfig::refused_destination(self).map(|(host, why)| ("url", host, why))
    }

    /// The webhook is the tenants' sink; only allowing private networks is the admin's.
    fn tenant_refusal(&self) -> Option<(&'static str, String)> {
        self.allow_private_networks.then(|| {
            (
                "allow_private_networks",
                "only the admin may allow private networks".into(),
            )
        })
    }

    fn needs_generated_secret(&self) -> bool {
        self.secret.is_none()
    }
}

fn parse_secret(field: &str, secret: &str) -> Result<WebhookSecret, SinkError> {
    WebhookSecret::parse(secret).map_err(|source| SinkError::Secret {
        field: field.to_owned(),
        source,
    })
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("previous_secrets", &self.previous_secrets)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("allow_private_networks", &self.allow_private_networks)
            .field("payload", &self.payload)
            .finish()
    }
}

impl fmt::Debug for PreviousSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviousSecret")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
