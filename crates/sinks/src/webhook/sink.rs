//! [`WebhookSink`]: builds the body, signs it, POSTs it through the guarded client and classifies the
//! outcome.
//!
//! Classification: 2xx → Delivered; connection errors, timeouts, 3xx (redirects are not followed), 408,
//! 429 and 5xx → Retriable (with `Retry-After`, delta-seconds or HTTP date, capped at 24 h); 410 →
//! Pause; other 4xx and SSRF refusals → Rejected.

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tributary_core::{AttemptReport, Delivery, DeliveryStatus, EventId, Sink, Timestamp};

use super::payload::PayloadFormat;
use super::signing::WebhookSecret;
use crate::http_client::{EXCERPT_LIMIT, GuardedClient, HttpError, HttpResponse, shown_url};

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Bodies larger than this are signed on the blocking pool.
const INLINE_SIGN_LIMIT: usize = 64 * 1024;

/// A running Standard Webhooks sink for one subscription.
#[derive(Debug)]
pub struct WebhookSink {
    subscription: Arc<str>,
    url: Url,
    shown_url: String,
    client: GuardedClient,
    secret: WebhookSecret,
    previous: Vec<(WebhookSecret, Timestamp)>,
    extra_headers: HeaderMap,
    payload: PayloadFormat,
}

/// The JSON body of every delivery.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: Timestamp,
    data: PayloadData<'a>,
}

#[derive(Serialize)]
struct PayloadData<'a> {
    id: EventId,
    source: &'a str,
    key: Option<&'a str>,
    occurred_at: Option<Timestamp>,
    ingested_at: Timestamp,
    seq: u64,
    data: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    retracts: Option<EventId>,
}

impl WebhookSink {
    pub(crate) fn new(
        subscription: Arc<str>,
        url: Url,
        client: GuardedClient,
        secret: WebhookSecret,
        previous: Vec<(WebhookSecret, Timestamp)>,
        extra_headers: HeaderMap,
        payload: PayloadFormat,
    ) -> Self {
        Self {
            subscription,
            shown_url: shown_url(&url),
            url,
            client,
            secret,
            previous,
            extra_headers,
            payload,
        }
    }

    /// The subscription this sink delivers for.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// The `webhook-signature` value: the current secret's signature, then one per unexpired previous
    /// secret, space-separated.
    pub fn signature_header(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        signature_header(
            &self.live_secrets(Timestamp::from_unix_secs(timestamp)),
            msg_id,
            timestamp,
            body,
        )
    }

    fn live_secrets(&self, now: Timestamp) -> Vec<WebhookSecret> {
        std::iter::once(self.secret.clone())
            .chain(
                self.previous
                    .iter()
                    .filter(|(_, expires_at)| *expires_at > now)
                    .map(|(secret, _)| secret.clone()),
            )
            .collect()
    }

    async fn prepare(&self, delivery: &Delivery, now: Timestamp) -> (Bytes, String) {
        let platform = match self.payload {
            PayloadFormat::PlatformEvent => super::payload::platform_event(delivery),
            PayloadFormat::Ethhook => crate::format::ethhook::body(delivery),
            PayloadFormat::Standard => None,
        };
        let body = Bytes::from(platform.unwrap_or_else(|| render_body(delivery, now)));
        let secrets = self.live_secrets(now);
        let msg_id = delivery.message_id.clone();
        let ts = now.unix_secs();
        if body.len() <= INLINE_SIGN_LIMIT {
            let signature = signature_header(&secrets, &msg_id, ts, &body);
            return (body, signature);
        }
        let to_sign = body.clone();
        match tokio::task::spawn_blocking(move || signature_header(&secrets, &msg_id, ts, &to_sign)).await {
            Ok(signature) => (body, signature),
            // Only reachable if the blocking pool is shutting down; sign inline then.
            Err(_) => {
                let signature = signature_header(&self.live_secrets(now), &delivery.message_id, ts, &body);
                (body, signature)
            }
        }
    }
}

fn signature_header(secrets: &[WebhookSecret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The delivery body: `{"type", "timestamp", "data": {id, source, key, occurred_at, ingested_at, seq,
/// data}}`, plus `data.retracts` when the event undoes an earlier one.
pub(crate) fn render_body(delivery: &Delivery, now: Timestamp) -> Vec<u8> {
    let stored = &delivery.event;
    let event = &stored.event;
    let payload = Payload {
        kind: &event.kind,
        timestamp: now,
        data: PayloadData {
            id: event.id,
            source: &stored.source,
            key: event.key.as_deref(),
            occurred_at: event.occurred_at,
            ingested_at: stored.ingested_at,
            seq: stored.seq,
            data: &event.data,
            retracts: event.retracts,
        },
    };
    serde_json::to_vec(&payload).expect("a payload of strings, numbers and JSON values serializes")
}

#[async_trait]
impl Sink for WebhookSink {
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        let now = Timestamp::now();
        let (body, signature) = self.prepare(delivery, now).await;
        let mut headers = self.extra_headers.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match HeaderValue::from_str(&delivery.message_id) {
            Ok(id) => {
                headers.insert("webhook-id", id);
            }
            Err(_) => {
                return AttemptReport::failed(
                    DeliveryStatus::Rejected,
                    None,
                    Duration::ZERO,
                    format!(
                        "webhook {}: message id {:?} is not a valid header value",
                        self.shown_url, delivery.message_id
                    ),
                );
            }
        }
        headers.insert("webhook-timestamp", HeaderValue::from(now.unix_secs()));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&signature).expect("base64 signatures are visible ASCII"),
        );
        let started = Instant::now();
        let result = self.client.post(&self.url, headers, body).await;
        let report = classify(result, &self.shown_url, started.elapsed(), SystemTime::now());
        tracing::debug!(
            subscription = %self.subscription,
            message_id = %delivery.message_id,
            attempt = delivery.attempt,
            status = ?report.status,
            code = ?report.code,
            latency_ms = report.latency.as_millis() as u64,
            "webhook attempt"
        );
        report
    }

    fn describe(&self) -> String {
        format!("webhook {}", self.shown_url)
    }
}

/// Turns the client's result into a report.
pub(crate) fn classify(
    result: Result<HttpResponse, HttpError>,
    shown_url: &str,
    latency: Duration,
    now: SystemTime,
) -> AttemptReport {
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            let (status, message) = match &error {
                HttpError::Refused { .. } => (DeliveryStatus::Rejected, format!("webhook {error}")),
                _ => (DeliveryStatus::Retriable, error.to_string()),
            };
            debug_assert_eq!(status == DeliveryStatus::Retriable, error.is_retriable());
            return AttemptReport::failed(status, None, latency, message);
        }
    };
    let status = response.status;
    let code = Some(status.as_u16());
    if status.is_success() {
        return AttemptReport::delivered(code, latency);
    }
    let mut error = format!("HTTP {} from {shown_url}", status.as_u16());
    let class = match status {
        StatusCode::GONE => {
            error.push_str(": the endpoint is gone; pause the subscription");
            DeliveryStatus::Pause
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => DeliveryStatus::Retriable,
        s if s.is_redirection() => {
            error.push_str(": redirects are not followed");
            if let Some(location) = response.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
                error.push_str(&format!("; update the URL to {location:?} if that is right"));
            }
            DeliveryStatus::Retriable
        }
        s if s.is_client_error() => DeliveryStatus::Rejected,
        // 5xx and anything unexpected.
        _ => DeliveryStatus::Retriable,
    };
    let mut report = AttemptReport::failed(class, code, latency, error);
    report.response_excerpt = excerpt(&response.body_start);
    if class == DeliveryStatus::Retriable {
        report.retry_after = response
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
    }
    report
}

/// `Retry-After` as delta-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]; a past date is zero.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// At most [`EXCERPT_LIMIT`] bytes of lossy UTF-8, cut at a character boundary; `None` when empty.
pub(crate) fn excerpt(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let mut text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LIMIT)]).into_owned();
    if text.len() > EXCERPT_LIMIT {
        let mut cut = EXCERPT_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_excerpts() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999999", now), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_retry_after("soon", now), None);

        assert_eq!(excerpt(b""), None);
        let long = "é".repeat(1000);
        let cut = excerpt(long.as_bytes()).unwrap();
        assert!(cut.len() <= 1024 && cut.chars().all(|c| c == 'é'), "{}", cut.len());
        assert_eq!(excerpt(b"ok\xff"), Some("ok\u{fffd}".into()));
    }
}
