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
    /// The body format: `standard` (default) or `platform_event` (ln-history's `PlatformEvent` for `ln.*`
    /// events; see [`payload`](super::payload)).
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
    pub fn validate(&self) -> Result<(), SinkError> {
        self.checked_url()?;
        if let Some(secret) = &self.secret {
            parse_secret("secret", secret)?;
        }
        for (i, previous) in self.previous_secrets.iter().enumerate() {
            parse_secret(&format!("previous_secrets[{i}].secret"), &previous.secret)?;
        }
        self.checked_headers()?;
        if self.timeout.is_zero() {
            return Err(SinkError::config("timeout", "must be greater than zero"));
        }
        if self.connect_timeout.is_zero() {
            return Err(SinkError::config("connect_timeout", "must be greater than zero"));
        }
        Ok(())
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
