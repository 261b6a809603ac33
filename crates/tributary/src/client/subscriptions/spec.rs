//! A subscription's settings from `--file SUB.json|toml` and/or flags, as the JSON the API takes.

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A subscription's settings from a file and/or flags, shared by `create` and `update` (the flags only one
/// of them takes are in [`Created`] and on `update` itself).
#[derive(clap::Args, Debug, Default)]
pub struct Spec {
    /// A subscription as in the config file: JSON, or TOML (one table, or one `[[subscriptions]]`).
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// The webhook endpoint (`--url` is the node's address).
    #[arg(long, visible_alias = "webhook-url")]
    pub endpoint: Option<String>,
    /// Kind patterns (`orders.*`), comma-separated or repeated. Default: every kind.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Source names, comma-separated or repeated. Default: every source.
    #[arg(long, value_delimiter = ',')]
    pub sources: Vec<String>,
    /// Event keys, comma-separated or repeated (the spelling of `events list --event-key`). Default: every key.
    #[arg(long = "event-key", alias = "keys", value_delimiter = ',')]
    pub event_keys: Vec<String>,
    /// Retry schedule, comma-separated (`0s,5s,5m,1h`).
    #[arg(long, value_delimiter = ',')]
    pub retry: Vec<String>,
    /// `none` or `per_key` (events of one key arrive in order).
    #[arg(long)]
    pub ordering: Option<String>,
    /// Deliveries in flight at once.
    #[arg(long)]
    pub max_in_flight: Option<u64>,
    /// At most this many deliveries per second.
    #[arg(long)]
    pub rate_limit: Option<f64>,
    /// Allow a receiver on a private or loopback address (admin key only).
    #[arg(long)]
    pub allow_private_networks: bool,
}

impl Spec {
    /// The file (if any) with the flags applied.
    pub(super) fn load(&self) -> anyhow::Result<Value> {
        let mut v = match &self.file {
            Some(f) => read_file(f)?,
            None => json!({}),
        };
        self.apply(&mut v);
        Ok(v)
    }

    /// Sets what the flags say on a subscription's JSON.
    pub(super) fn apply(&self, v: &mut Value) {
        if !v.is_object() {
            *v = json!({});
        }
        if !v["sink"].is_object() {
            v["sink"] = json!({"type": "webhook"});
        }
        let sink = &mut v["sink"];
        if let Some(url) = &self.endpoint {
            sink["url"] = url.clone().into();
        }
        if self.allow_private_networks {
            sink["allow_private_networks"] = true.into();
        }
        for (field, list) in [
            ("kinds", &self.kinds),
            ("sources", &self.sources),
            ("keys", &self.event_keys),
        ] {
            if !list.is_empty() {
                if !v["filter"].is_object() {
                    v["filter"] = json!({});
                }
                v["filter"][field] = json!(list);
            }
        }
        if !self.retry.is_empty() {
            if !v["retry"].is_object() {
                v["retry"] = json!({});
            }
            v["retry"]["schedule"] = json!(self.retry);
        }
        let mut set = |k: &str, val: Option<Value>| {
            if let Some(val) = val {
                v[k] = val;
            }
        };
        set("ordering", self.ordering.clone().map(Value::from));
        set("max_in_flight", self.max_in_flight.map(Value::from));
        set("rate_limit", self.rate_limit.map(Value::from));
    }
}

/// What only `create` sets: the secret (else generated), where it starts, whose it is.
#[derive(clap::Args, Debug, Default)]
pub struct Created {
    /// The signing secret (`whsec_…`). Default: a generated one.
    #[arg(long)]
    pub secret: Option<String>,
    /// Where it starts: `beginning` of the log (default) or its `end`.
    #[arg(long)]
    pub start: Option<String>,
    /// The owning tenant (admin key only; a tenant key always creates its own). It must exist.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl Created {
    /// Sets what the flags say on a subscription's JSON (after [`Spec::apply`]).
    pub(super) fn apply(&self, v: &mut Value) {
        set_secret(v, self.secret.as_deref());
        if let Some(start) = &self.start {
            v["start"] = start.clone().into();
        }
        if let Some(tenant) = &self.tenant {
            v["tenant"] = tenant.clone().into();
        }
    }
}

/// Sets `sink.secret` when one is given.
pub(super) fn set_secret(v: &mut Value, secret: Option<&str>) {
    if let Some(secret) = secret {
        v["sink"]["secret"] = secret.into();
    }
}

/// A subscription file: JSON, or TOML with the fields at the top or in a single `[[subscriptions]]`.
fn read_file(f: &Path) -> anyhow::Result<Value> {
    let body = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
    let v: Value = if f.extension().is_some_and(|e| e == "toml") {
        let t: toml::Table = toml::from_str(&body).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        serde_json::to_value(t)?
    } else {
        serde_json::from_str(&body).map_err(|e| anyhow!("{}: {e}", f.display()))?
    };
    match v.get("subscriptions").and_then(Value::as_array).map(Vec::as_slice) {
        Some([one]) => Ok(one.clone()),
        Some(_) => bail!("{}: expected one subscription, found a list", f.display()),
        None if v.is_object() => Ok(v),
        None => bail!("{}: expected a subscription object", f.display()),
    }
}
