//! `tributary subscriptions ...`: list, inspect, create, update, delete, pause, resume, rotate the secret,
//! send a test event, show the secret and the deliveries of a subscription.
//!
//! `create` and `update` take a subscription as in the config file (`--file SUB.json` or `.toml`) and/or
//! flags (`--name --endpoint --kinds ...`); flags win over the file. `update` without `--file` changes only what
//! the flags say and keeps the rest, the signing secrets included.

mod spec;

pub use spec::Spec;

use super::table::{Table, clip, print_fields, text, time};
use super::{Client, print_json, seg};
use anyhow::bail;
use reqwest::Method;
use serde_json::{Value, json};

/// Subscription commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Subscriptions visible to the key, with state, backlog and counters.
    List,
    /// One subscription: status and config (secrets redacted).
    Get {
        /// The subscription.
        name: String,
    },
    /// Create a subscription; prints its signing secret.
    Create {
        /// Its name (or `name` in the file).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        spec: Spec,
    },
    /// Change an API-created subscription; its cursor, deliveries and secrets carry over.
    Update {
        /// The subscription.
        name: String,
        #[command(flatten)]
        spec: Spec,
    },
    /// Delete an API-created subscription (its delivery history stays).
    Delete {
        /// The subscription.
        name: String,
    },
    /// Stop starting deliveries (in-flight ones finish).
    Pause {
        /// The subscription.
        name: String,
    },
    /// Deliver again; waiting retries become due now.
    Resume {
        /// The subscription.
        name: String,
    },
    /// New signing secret; the old one keeps signing for the overlap.
    RotateSecret {
        /// The subscription.
        name: String,
        /// How long the old secret keeps signing (at most 30 days).
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
    /// Send a `tributary.test` event to the endpoint now; fails unless it is delivered.
    Test {
        /// The subscription.
        name: String,
    },
    /// Show the signing secret(s).
    Secret {
        /// The subscription.
        name: String,
    },
    /// Deliveries with every attempt (time, outcome, status, latency, error).
    Deliveries {
        /// The subscription.
        name: String,
        /// Events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many events (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn path(name: &str, rest: &str) -> String {
    format!("/v1/subscriptions/{}{rest}", seg(name))
}

/// Runs a subscription command.
pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    let v = match cmd {
        Cmd::List => {
            let v = c.get("/v1/subscriptions", &[]).await?;
            if !c.json {
                list(&v);
            }
            v
        }
        Cmd::Get { name } => {
            let v = c.get(&path(&name, ""), &[]).await?;
            if !c.json {
                detail(&v);
            }
            v
        }
        Cmd::Create { name, spec } => {
            let mut body = spec.load()?;
            if let Some(n) = name {
                body["name"] = n.into();
            }
            let Some(name) = body["name"].as_str().map(str::to_owned) else {
                bail!("give the subscription a name: --name NAME or `name` in --file");
            };
            if body["sink"]["url"].is_null() {
                bail!("give the endpoint: --endpoint URL or [sink] url in --file");
            }
            let v = c.post("/v1/subscriptions", Some(&body)).await?;
            if !c.json {
                let secret = c.get(&path(&name, "/secret"), &[]).await?;
                println!("created subscription {name} ({})", text(&v["sink"]));
                println!("signing secret: {}", text(&secret["secret"]));
            }
            v
        }
        Cmd::Update { name, spec } => {
            let body = if spec.file.is_some() {
                spec.load()?
            } else {
                let mut current = c.get(&path(&name, ""), &[]).await?["config"].take();
                if let Some(sink) = current["sink"].as_object_mut() {
                    sink.remove("secret"); // redacted here; the node keeps the real ones
                    sink.remove("previous_secrets");
                }
                spec.apply(&mut current);
                current
            };
            let v = c.call(Method::PUT, &path(&name, ""), Some(&body)).await?;
            if !c.json {
                println!("updated subscription {name}");
            }
            v
        }
        Cmd::Delete { name } => {
            c.call(Method::DELETE, &path(&name, ""), None).await?;
            if !c.json {
                println!("deleted subscription {name}");
            }
            json!({"subscription": name, "deleted": true})
        }
        Cmd::Pause { name } => control(c, &name, "pause", "paused").await?,
        Cmd::Resume { name } => control(c, &name, "resume", "resumed").await?,
        Cmd::RotateSecret { name, overlap } => {
            let overlap = super::duration_arg("--overlap", &overlap)?;
            let body = json!({"overlap_seconds": overlap.as_secs()});
            let v = c.post(&path(&name, "/rotate-secret"), Some(&body)).await?;
            if !c.json {
                println!("new signing secret: {}", text(&v["secret"]));
                println!("the old secret keeps signing until {}", text(&v["previous_expires_at"]));
            }
            v
        }
        Cmd::Test { name } => {
            let v = c.post(&path(&name, "/test"), None).await?;
            if c.json {
                print_json(&v);
            }
            let latency = v["latency_ms"].as_f64().unwrap_or(0.0);
            if v["outcome"] != "delivered" {
                let status = v["status"]
                    .as_u64()
                    .map(|s| format!(", status {s}"))
                    .unwrap_or_default();
                bail!(
                    "test event to {name:?} not delivered ({}{status}): {}",
                    text(&v["outcome"]),
                    text(&v["error"])
                );
            }
            if !c.json {
                println!("delivered: status {} in {latency:.1} ms", text(&v["status"]));
            }
            return Ok(());
        }
        Cmd::Secret { name } => {
            let v = c.get(&path(&name, "/secret"), &[]).await?;
            if !c.json {
                println!("{}", text(&v["secret"]));
                for p in v["previous"].as_array().into_iter().flatten() {
                    println!("{} (previous, until {})", text(&p["secret"]), text(&p["expires_at"]));
                }
            }
            v
        }
        Cmd::Deliveries { name, after, limit } => {
            let q = [("after", Some(after.to_string())), ("limit", Some(limit.to_string()))];
            let v = c.get(&path(&name, "/deliveries"), &q).await?;
            if !c.json {
                deliveries(&v);
            }
            v
        }
    };
    if c.json {
        print_json(&v);
    }
    Ok(())
}

async fn control(c: &Client, name: &str, action: &str, done: &str) -> anyhow::Result<Value> {
    let v = c.post(&path(name, &format!("/{action}")), None).await?;
    if !c.json {
        println!("{done} subscription {name}");
    }
    Ok(v)
}

/// `paused`, `breaker open` or `active`.
fn state(status: &Value) -> &'static str {
    if status["paused"].as_bool() == Some(true) {
        "paused"
    } else if status["breaker_open"].as_bool() == Some(true) {
        "breaker open"
    } else {
        "active"
    }
}

fn list(v: &Value) {
    let mut t = Table::new(&[
        "NAME",
        "ORIGIN",
        "TENANT",
        "STATE",
        "BACKLOG",
        "DELIVERED",
        "FAILED",
        "DEAD",
        "SINK",
    ]);
    for s in v["subscriptions"].as_array().into_iter().flatten() {
        let st = &s["status"];
        t.row(vec![
            text(&s["name"]),
            text(&s["origin"]),
            text(&s["tenant"]),
            state(st).into(),
            text(&s["backlog"]),
            text(&st["delivered"]),
            text(&st["failed_attempts"]),
            text(&st["dead_letters"]),
            clip(&text(&s["sink"]), 60),
        ]);
    }
    t.print_or("no subscriptions visible to this key");
}

fn detail(s: &Value) {
    let st = &s["status"];
    print_fields(&[
        ("name", text(&s["name"])),
        ("origin", text(&s["origin"])),
        ("tenant", text(&s["tenant"])),
        ("sink", text(&s["sink"])),
        ("state", state(st).into()),
        ("backlog", text(&s["backlog"])),
        ("cursor", text(&st["cursor"])),
        ("delivered", text(&st["delivered"])),
        ("failed attempts", text(&st["failed_attempts"])),
        ("dead letters", text(&st["dead_letters"])),
        ("in flight", text(&st["in_flight"])),
        ("pending", text(&st["pending"])),
    ]);
    println!(
        "config:\n{}",
        serde_json::to_string_pretty(&s["config"]).unwrap_or_default()
    );
}

fn deliveries(v: &Value) {
    let mut t = Table::new(&["SEQ", "ATTEMPT", "AT", "OUTCOME", "STATUS", "LATENCY", "ERROR"]);
    for d in v["deliveries"].as_array().into_iter().flatten() {
        for a in d["attempts"].as_array().into_iter().flatten() {
            let ms = a["latency_us"].as_f64().unwrap_or(0.0) / 1000.0;
            t.row(vec![
                text(&d["seq"]),
                text(&a["attempt"]),
                time(&a["at"]),
                text(&a["outcome"]),
                text(&a["status"]),
                format!("{ms:.1} ms"),
                clip(&text(&a["error"]), 80),
            ]);
        }
    }
    t.print_or("no deliveries yet");
    if !v["next_after"].is_null() {
        eprintln!("more: --after {}", text(&v["next_after"]));
    }
}
