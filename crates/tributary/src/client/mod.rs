//! Client commands: operate a running node through its HTTP API (`tributary subscriptions list`, ...).
//!
//! The binary's global options ([`Conn`], accepted anywhere on the command line): `--url` (env
//! `TRIBUTARY_URL`), `--key` (env `TRIBUTARY_KEY`, else `TRIBUTARY_ADMIN_KEY`) and `--json` (print the
//! API's JSON instead of a table). A failure is one line: the HTTP status, the API's error code and its
//! message, or why the node could not be reached; under `--json` it is `{"error": {"code", "message"}}` on
//! stdout ([`ClientError`] carries the code).
//!
//! - [`table`]: aligned text tables and the small formatting helpers the commands share.
//! - [`sources`]: `sources status [NAME]` (alias `sources list`).
//! - [`events`]: `events list | get | tail | send`.
//! - [`send`]: `events send`: one event, or an NDJSON file in batches with a progress bar.
//! - [`subscriptions`]: `subscriptions list | get | create | update | delete | pause | resume | ...`.
//! - [`dlq`]: `dlq stats | list | replay | purge`, over one or every visible subscription.
//! - [`replay`]: `replay --subscription NAME --from X --to Y`: deliver a range of the log again.
//! - [`tenants`]: `tenants create | list | keys create | keys list | keys revoke` (admin).
//! - [`cluster`]: `cluster status`: the nodes sharing a PostgreSQL store and their leases (admin).

pub mod cluster;
pub mod dlq;
pub mod events;
pub mod replay;
pub mod send;
pub mod sources;
pub mod subscriptions;
pub mod table;
pub mod tenants;

use anyhow::{Context, anyhow};
use reqwest::{Method, Url};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Where the node is, who is asking and how to print: the binary's global options, accepted before or
/// after the command (`tributary --json subscriptions list`, `tributary subscriptions list --json`).
#[derive(clap::Args, Clone, Debug)]
pub struct Conn {
    /// The node's base URL (client commands).
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_URL",
        default_value = "http://127.0.0.1:8080",
        help_heading = "Global options"
    )]
    pub url: String,
    /// Admin key or tenant API key, sent as `Authorization: Bearer` (client commands) [env: TRIBUTARY_KEY,
    /// else TRIBUTARY_ADMIN_KEY].
    #[arg(long, global = true, alias = "api-key", help_heading = "Global options")]
    pub key: Option<String>,
    /// Print JSON instead of tables and text (for scripts); a failure too, as {"error": {"code",
    /// "message"}} on stdout, with the same exit code.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

/// A client command's failure with a machine-readable code: the API's (`not_found`, `forbidden`, ...),
/// `unreachable` when the node did not answer, `invalid_argument` for what the CLI refused itself.
#[derive(Debug)]
pub struct ClientError {
    /// The code printed under `--json`.
    pub code: String,
    /// The one line printed after `error: `.
    pub message: String,
    /// For the API's `invalid_event`: which event of the request (`index`).
    pub index: Option<usize>,
}

impl ClientError {
    /// A failure with this code.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            index: None,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

/// `bail!` for what the CLI refuses before asking the node: code `invalid_argument`.
#[macro_export]
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err($crate::client::ClientError::new("invalid_argument", format!($($arg)*)).into())
    };
}

/// The client commands; the binary flattens them into its own.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Sources and their status (connected, stalled, events/s, checkpoints).
    Sources {
        #[command(subcommand)]
        cmd: sources::Cmd,
    },
    /// The event log: list, get one, follow live, send events to an http source.
    Events {
        #[command(subcommand)]
        cmd: events::Cmd,
    },
    /// Subscriptions: who receives which events.
    Subscriptions {
        #[command(subcommand)]
        cmd: Box<subscriptions::Cmd>,
    },
    /// Dead letters: deliveries that failed for good; stats, list, replay, purge.
    Dlq {
        #[command(subcommand)]
        cmd: dlq::Cmd,
    },
    /// Deliver a sequence or time range of the log again to one subscription.
    Replay(replay::Args),
    /// Tenants and their API keys (admin key).
    Tenants {
        #[command(subcommand)]
        cmd: tenants::Cmd,
    },
    /// The nodes sharing a PostgreSQL store and which runs each source and subscription (admin key).
    Cluster {
        #[command(subcommand)]
        cmd: cluster::Cmd,
    },
}

/// Runs a client command against the node.
pub async fn run(command: Command, conn: &Conn) -> anyhow::Result<()> {
    let c = Client::new(conn)?;
    match command {
        Command::Sources { cmd } => sources::run(&c, cmd).await,
        Command::Events { cmd } => events::run(&c, cmd).await,
        Command::Subscriptions { cmd } => subscriptions::run(&c, *cmd).await,
        Command::Dlq { cmd } => dlq::run(&c, cmd).await,
        Command::Replay(args) => replay::run(&c, args).await,
        Command::Tenants { cmd } => tenants::run(&c, cmd).await,
        Command::Cluster { cmd } => cluster::run(&c, cmd).await,
    }
}

/// How long one request may take before the client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The HTTP client of the client commands: base URL, key, output mode, one-line errors.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
    /// Print JSON instead of tables.
    pub json: bool,
}

impl Client {
    /// A client for `conn`; the key falls back to `TRIBUTARY_KEY`, then `TRIBUTARY_ADMIN_KEY`.
    pub fn new(conn: &Conn) -> anyhow::Result<Self> {
        let base = Url::parse(&conn.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                ClientError::new(
                    "invalid_argument",
                    format!(
                        "--url: expected http://HOST:PORT or https://..., got {:?} (--url, TRIBUTARY_URL)",
                        conn.url
                    ),
                )
            })?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let key = conn
            .key
            .clone()
            .or_else(|| env("TRIBUTARY_KEY"))
            .or_else(|| env("TRIBUTARY_ADMIN_KEY"));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            key,
            json: conn.json,
        })
    }

    /// `GET path?query` (pairs with a `None` value are left out); the parsed JSON answer.
    pub async fn get(&self, path: &str, query: &[(&str, Option<String>)]) -> anyhow::Result<Value> {
        let mut url = self.url(path);
        let given: Vec<_> = query.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))).collect();
        if !given.is_empty() {
            url.query_pairs_mut().extend_pairs(given);
        }
        self.send(self.http.get(url)).await
    }

    /// `POST path` with a JSON body (or none).
    pub async fn post(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.call(Method::POST, path, body).await
    }

    /// Any method with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    /// `POST path?query` with a streamed body of `content_type` and no overall time limit (an upload of
    /// several GiB); the parsed JSON answer.
    pub async fn upload(
        &self,
        path: &str,
        query: &[(&str, Option<String>)],
        content_type: &str,
        body: reqwest::Body,
    ) -> anyhow::Result<Value> {
        let mut url = self.url(path);
        let given: Vec<_> = query.iter().filter_map(|(k, v)| Some((*k, v.as_deref()?))).collect();
        if !given.is_empty() {
            url.query_pairs_mut().extend_pairs(given);
        }
        let req = (self.http.post(url))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(Duration::from_secs(7 * 24 * 3600))
            .body(body);
        self.send(req).await
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: the answer is not JSON; is --url a tributary node?", self.base));
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let code = body["error"]["code"].as_str().map(str::to_owned).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace(' ', "_")
        });
        let message = body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&bytes);
            table::clip(text.lines().next().unwrap_or("no error message"), 200)
        });
        let mut line = format!("{} {code}: {message}", status.as_u16());
        if status == reqwest::StatusCode::UNAUTHORIZED && self.key.is_none() {
            line.push_str("; pass --key or set TRIBUTARY_KEY");
        }
        let mut e = ClientError::new(code, line);
        e.index = body["error"]["index"].as_u64().map(|i| i as usize);
        Err(e.into())
    }

    /// "cannot reach URL: connection refused; is tributary running?" from a transport error.
    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let base = self.base.as_str().trim_end_matches('/');
        if e.is_timeout() {
            let message = format!(
                "{base}: no answer within {} s; is the node overloaded or stuck?",
                REQUEST_TIMEOUT.as_secs()
            );
            return ClientError::new("unreachable", message).into();
        }
        let mut reason = e.to_string();
        let mut cause: Option<&dyn std::error::Error> = Some(e);
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                reason = io_reason(io);
                break;
            }
            reason = c.to_string();
            cause = c.source();
        }
        let message = format!("cannot reach {base}: {reason}; is tributary running? (--url, TRIBUTARY_URL)");
        ClientError::new("unreachable", message).into()
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        _ => {
            let text = e.to_string();
            let mut chars = text.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or(text)
        }
    }
}

/// Prints JSON for scripts (pretty; one value).
pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A time for the API: an RFC 3339 time as given, or a duration (`24h`, `90m`, `7d`) ago.
pub fn time_arg(flag: &str, given: &str) -> anyhow::Result<String> {
    if tributary_core::Timestamp::parse_rfc3339(given).is_ok() {
        return Ok(given.to_owned());
    }
    let ago = humantime::parse_duration(given).map_err(|e| {
        anyhow!("{flag}: expected a duration such as 24h or 30m, or an RFC 3339 time, got {given:?} ({e})")
    })?;
    let at = SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| anyhow!("{flag}: {given:?} reaches before the epoch"))?;
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

/// An optional [`time_arg`].
pub fn opt_time(flag: &str, given: &Option<String>) -> anyhow::Result<Option<String>> {
    given.as_deref().map(|g| time_arg(flag, g)).transpose()
}

/// A duration flag (`24h`, `90s`).
pub fn duration_arg(flag: &str, given: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(given)
        .map_err(|e| anyhow!("{flag}: expected a duration such as 24h or 30m, got {given:?} ({e})"))
}

/// Percent-encodes one path segment (subscription, tenant and key names).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_args_accept_durations_and_rfc3339() {
        assert_eq!(
            time_arg("--since", "2026-01-02T03:04:05Z").unwrap(),
            "2026-01-02T03:04:05Z"
        );
        let t = time_arg("--since", "24h").unwrap();
        assert!(tributary_core::Timestamp::parse_rfc3339(&t).is_ok(), "{t}");
        let e = time_arg("--since", "yesterday").unwrap_err().to_string();
        assert!(e.starts_with("--since: expected a duration"), "{e}");
    }

    #[test]
    fn no_command_shadows_the_global_options() {
        use clap::{CommandFactory, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            conn: Conn,
            #[command(subcommand)]
            command: Command,
        }
        fn walk(c: &clap::Command, depth: usize, path: &str) {
            for a in c.get_arguments().filter(|a| !a.is_global_set()) {
                let long = a.get_long().unwrap_or_default();
                let shadows = ["url", "key", "json", "api-key"].contains(&long) && depth > 0;
                assert!(!shadows, "{path} --{long} shadows the global option");
            }
            for sub in c.get_subcommands() {
                walk(sub, depth + 1, &format!("{path} {}", sub.get_name()));
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        walk(&cmd, 0, "tributary");
        // Accepted before and after the command.
        for args in [
            &["t", "--json", "--url", "http://x:1", "subscriptions", "list"][..],
            &["t", "subscriptions", "list", "--key", "k", "--json"][..],
            &["t", "subscriptions", "--api-key", "k", "list"][..],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(cli.conn.json || cli.conn.key.as_deref() == Some("k"), "{args:?}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a-b_c.d"), "a-b_c.d");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }
}
