//! A small JSON-RPC 2.0 client: over the workspace's reqwest for `http(s)://` providers, over one WebSocket
//! connection ([`super::ws`]) for `ws(s)://` ones. Single calls and batches, a timeout per request, answers
//! read up to `max_response_bytes`, redirects never followed, and errors that name the provider only by
//! its masked URL (reqwest's and tungstenite's own messages are stripped of the URL).

use super::config::RpcUrl;
use super::wire::{self, RpcErrorObject};
use super::ws::{WsClient, WsFailure};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Why a call failed. Every message names the provider by its masked URL.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Could not connect or send (DNS, refused, reset).
    #[error("{provider}: cannot reach the provider: {detail}")]
    Transport {
        /// The masked URL.
        provider: String,
        /// What happened.
        detail: String,
    },
    /// No answer in time.
    #[error("{provider}: no answer to {method} within {ms} ms (request_timeout_ms)")]
    Timeout {
        /// The masked URL.
        provider: String,
        /// The method called.
        method: String,
        /// The timeout.
        ms: u64,
    },
    /// A non-2xx HTTP status.
    #[error("{provider}: HTTP {status} to {method}: {excerpt}")]
    Status {
        /// The masked URL.
        provider: String,
        /// The method called.
        method: String,
        /// The status.
        status: u16,
        /// The start of the body.
        excerpt: String,
    },
    /// The answer was larger than `max_response_bytes`.
    #[error("{provider}: answer to {method} larger than max_response_bytes ({max} bytes)")]
    TooLarge {
        /// The masked URL.
        provider: String,
        /// The method called.
        method: String,
        /// The cap.
        max: usize,
    },
    /// Not JSON-RPC, or not the shape the method answers.
    #[error("{provider}: invalid answer to {method}: {reason}")]
    Invalid {
        /// The masked URL.
        provider: String,
        /// The method called.
        method: String,
        /// What was wrong.
        reason: String,
        /// The start of the answer.
        excerpt: String,
    },
    /// A JSON-RPC error object.
    #[error("{provider}: {method} failed with code {code}: {message}")]
    Rpc {
        /// The masked URL.
        provider: String,
        /// The method called.
        method: String,
        /// The code.
        code: i64,
        /// The message.
        message: String,
    },
}

impl RpcError {
    /// Whether the provider refused the block range as too large (too many results, a size or range
    /// limit): the range is halved. Classified by the error's class; only a JSON-RPC error object is
    /// classified by its code and message, which is all a provider gives.
    pub fn is_range_limit(&self) -> bool {
        match self {
            Self::TooLarge { .. } => true,
            Self::Status { status, .. } => *status == 413,
            Self::Rpc { code, message, .. } => {
                let m = message.to_ascii_lowercase();
                *code == -32005
                    || [
                        "too many",
                        "more than",
                        "limit",
                        "exceed",
                        "range",
                        "too large",
                        "response size",
                        "timeout",
                    ]
                    .iter()
                    .any(|p| m.contains(p))
            }
            _ => false,
        }
    }

    /// The start of the offending answer, for a reject.
    pub fn excerpt(&self) -> String {
        match self {
            Self::Invalid { excerpt, .. } | Self::Status { excerpt, .. } => excerpt.clone(),
            _ => String::new(),
        }
    }
}

/// How calls reach the provider.
#[derive(Clone)]
enum Transport {
    Http(reqwest::Client),
    Ws(Arc<WsClient>),
}

/// A JSON-RPC client of one provider.
#[derive(Clone)]
pub struct Rpc {
    transport: Transport,
    url: RpcUrl,
    shown: String,
    max_bytes: usize,
    timeout_ms: u64,
}

impl Rpc {
    /// A client for `url` with a per-request timeout and an answer size cap.
    pub fn new(url: RpcUrl, timeout: Duration, max_bytes: usize) -> Result<Self, String> {
        let transport = if url.is_ws() {
            Transport::Ws(Arc::new(WsClient::new(url.clone(), timeout, max_bytes)))
        } else {
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))?;
            Transport::Http(http)
        };
        Ok(Self {
            transport,
            shown: url.masked(),
            url,
            max_bytes,
            timeout_ms: timeout.as_millis() as u64,
        })
    }

    /// The masked URL (the observer name).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Resolves when a WebSocket provider announced a new head (at once if one came since the last
    /// wait); never for an HTTP provider or one that refused the subscription: those are polled.
    pub async fn new_head(&self) {
        match &self.transport {
            Transport::Ws(ws) => ws.new_head().await,
            Transport::Http(_) => std::future::pending().await,
        }
    }

    /// How heads reach the follower: `"subscription"` (WebSocket `newHeads`) or `"polling"`.
    pub fn heads(&self) -> &'static str {
        match &self.transport {
            Transport::Ws(ws) if ws.subscribed() => "subscription",
            _ => "polling",
        }
    }

    /// One call; the `result` on success.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let answer = match &self.transport {
            Transport::Ws(ws) => ws.call(method, &params).await.map_err(|f| self.ws_failure(method, f))?,
            Transport::Http(http) => {
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                self.post(http, method, &body).await?
            }
        };
        let (_, result) = wire::parse_envelope(&answer).map_err(|reason| self.invalid(method, reason, &answer))?;
        result.map_err(|e| self.rpc_error(method, e))
    }

    /// Several calls in one JSON-RPC batch, answers in call order. A provider that answers a batch with
    /// anything but an array of answers gets the calls one by one instead.
    pub async fn batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        match calls.len() {
            0 => return Ok(Vec::new()),
            1 => return Ok(vec![self.call(calls[0].0, calls[0].1.clone()).await]),
            _ => {}
        }
        let http = match &self.transport {
            Transport::Http(http) => http,
            Transport::Ws(_) => {
                // Over WebSocket every call is its own message, all in flight at once.
                let each = calls.iter().map(|(m, p)| self.call(m, p.clone()));
                return Ok(futures_util::future::join_all(each).await);
            }
        };
        let method = calls[0].0;
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"jsonrpc": "2.0", "id": i as u64, "method": m, "params": p}))
            .collect();
        let answer = self.post(http, method, &Value::Array(body)).await?;
        let Value::Array(items) = &answer else {
            let mut out = Vec::with_capacity(calls.len());
            for (m, p) in calls {
                out.push(self.call(m, p.clone()).await);
            }
            return Ok(out);
        };
        let mut out: Vec<Option<Result<Value, RpcError>>> = (0..calls.len()).map(|_| None).collect();
        for item in items {
            let (id, result) = wire::parse_envelope(item).map_err(|reason| self.invalid(method, reason, item))?;
            let slot = id
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| out.get_mut(i))
                .ok_or_else(|| self.invalid(method, format!("batch answer with unknown id {id:?}"), item))?;
            *slot = Some(result.map_err(|e| self.rpc_error(calls[id.unwrap_or(0) as usize].0, e)));
        }
        out.into_iter()
            .enumerate()
            .map(|(i, r)| r.ok_or_else(|| self.invalid(calls[i].0, format!("batch answer lacks id {i}"), &answer)))
            .collect()
    }

    async fn post(&self, http: &reqwest::Client, method: &str, body: &Value) -> Result<Value, RpcError> {
        let sent = http
            .post(self.url.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(method, e))?;
        let status = sent.status();
        let bytes = self.read_capped(method, sent).await?;
        if !status.is_success() {
            return Err(RpcError::Status {
                provider: self.shown.clone(),
                method: method.to_owned(),
                status: status.as_u16(),
                excerpt: wire::excerpt(&String::from_utf8_lossy(&bytes[..bytes.len().min(1024)])),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| RpcError::Invalid {
            provider: self.shown.clone(),
            method: method.to_owned(),
            reason: format!("not JSON: {e}"),
            excerpt: wire::excerpt(&String::from_utf8_lossy(&bytes[..bytes.len().min(1024)])),
        })
    }

    async fn read_capped(&self, method: &str, mut resp: reqwest::Response) -> Result<Vec<u8>, RpcError> {
        if resp.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(self.too_large(method));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(method, e))? {
            if buf.len() + chunk.len() > self.max_bytes {
                return Err(self.too_large(method));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    fn ws_failure(&self, method: &str, failure: WsFailure) -> RpcError {
        match failure {
            WsFailure::Timeout => RpcError::Timeout {
                provider: self.shown.clone(),
                method: method.to_owned(),
                ms: self.timeout_ms,
            },
            WsFailure::TooLarge => self.too_large(method),
            WsFailure::Transport(detail) => RpcError::Transport {
                provider: self.shown.clone(),
                detail,
            },
        }
    }

    fn too_large(&self, method: &str) -> RpcError {
        RpcError::TooLarge {
            provider: self.shown.clone(),
            method: method.to_owned(),
            max: self.max_bytes,
        }
    }

    fn transport(&self, method: &str, e: reqwest::Error) -> RpcError {
        if e.is_timeout() {
            return RpcError::Timeout {
                provider: self.shown.clone(),
                method: method.to_owned(),
                ms: self.timeout_ms,
            };
        }
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            detail = format!("{detail}: {c}");
            cause = c.source();
        }
        RpcError::Transport {
            provider: self.shown.clone(),
            detail,
        }
    }

    /// An invalid answer: what was wrong and the start of what came.
    pub fn invalid(&self, method: &str, reason: String, answer: &Value) -> RpcError {
        let text = answer.to_string();
        RpcError::Invalid {
            provider: self.shown.clone(),
            method: method.to_owned(),
            reason,
            excerpt: wire::excerpt(&text),
        }
    }

    fn rpc_error(&self, method: &str, e: RpcErrorObject) -> RpcError {
        RpcError::Rpc {
            provider: self.shown.clone(),
            method: method.to_owned(),
            code: e.code,
            message: e.message,
        }
    }
}
