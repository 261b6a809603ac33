//! `tributary subscriptions ...`: list, inspect, create, update, delete, pause, resume, rotate the secret,
//! send a test event, show the secret and the deliveries of a subscription.
//!
//! Every command names the subscription as its first argument (`create NAME`; `--name` still works).
//! `create` and `update` take a subscription as in the config file (`--file SUB.json` or `.toml`) and/or
//! flags (`--endpoint --kinds ...`); flags win over the file. `update` without `--file` changes only what
//! the flags say and keeps the rest, the signing secrets included.

mod spec;

pub use spec::{Created, Spec};

use super::table::{Table, cell, clip, print_fields, text, time};
use super::{Client, print_json, seg};
use crate::refuse;
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
        name: Option<String>,
        /// Its name (the earlier spelling of the NAME argument).
        #[arg(long = "name", hide = true, conflicts_with = "name")]
        name_flag: Option<String>,
        #[command(flatten)]
        spec: Spec,
        #[command(flatten)]
        created: Created,
    },
    /// Change an API-created subscription; what no flag names stays as it is, and its cursor, deliveries
    /// and signing secrets carry over.
    Update {
        /// The subscription.
        name: String,
        #[command(flatten)]
        spec: Spec,
        /// Replace the signing secrets at once with this one (`whsec_…`); `rotate-secret` keeps the old
        /// one signing for an overlap instead.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Delete an API-created subscription (its delivery history stays; the name cannot be used again).
    Delete {
        /// The subscription.
        name: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
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
    /// Print the current signing secret, one line (`$(tributary subscriptions secret NAME)`).
    Secret {
        /// The subscription.
        name: String,
        /// Also the previous secrets still signing after a rotation, with their expiry.
        #[arg(long)]
        all: bool,
    },
    /// Deliveries with every attempt (time, outcome, status, latency, error).
    Deliveries {
        /// The subscription.
        name: String,
        /// Show long errors in full instead of clipping them to the table.
        #[arg(long)]
        wide: bool,
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
        Cmd::Create {
            name,
            name_flag,
            spec,
            created,
        } => {
            let mut body = spec.load()?;
            created.apply(&mut body);
            if let Some(n) = name.or(name_flag) {
                body["name"] = n.into();
            }
            let Some(name) = body["name"].as_str().map(str::to_owned) else {
                refuse!("give the subscription a name: `subscriptions create NAME` or `name` in --file");
            };
            if body["sink"]["url"].is_null() {
                refuse!("give the endpoint: --endpoint URL or [sink] url in --file");
            }
            let v = c.post("/v1/subscriptions", Some(&body)).await?;
            if !c.json {
                let secret = c.get(&path(&name, "/secret"), &[]).await?;
                println!("created subscription {name} ({})", text(&v["sink"]));
                println!("signing secret: {}", text(&secret["secret"]));
            }
            v
        }
        Cmd::Update { name, spec, secret } => {
            let mut body = if spec.file.is_some() {
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
            spec::set_secret(&mut body, secret.as_deref());
            let v = c.call(Method::PUT, &path(&name, ""), Some(&body)).await?;
            if !c.json {
                println!("updated subscription {name}");
            }
            v
        }
        Cmd::Delete { name, yes } => {
            if !yes {
                refuse!(
                    "delete stops subscription {name:?} for good and its name cannot be used again: add --yes to confirm (`subscriptions pause {name}` stops deliveries and can be undone)"
                );
            }
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
        Cmd::Secret { name, all } => {
            let mut v = c.get(&path(&name, "/secret"), &[]).await?;
            if !c.json {
                println!("{}", text(&v["secret"]));
                let previous = v["previous"].as_array().map(Vec::as_slice).unwrap_or_default();
                if all {
                    for p in previous {
                        println!("{} (previous, until {})", text(&p["secret"]), text(&p["expires_at"]));
                    }
                } else if !previous.is_empty() {
                    eprintln!("{} previous secret(s) still signing: --all shows them", previous.len());
                }
            } else if !all && let Some(obj) = v.as_object_mut() {
                obj.remove("previous");
            }
            v
        }
        Cmd::Deliveries {
            name,
            wide,
            after,
            limit,
        } => {
            let q = [("after", Some(after.to_string())), ("limit", Some(limit.to_string()))];
            let v = c.get(&path(&name, "/deliveries"), &q).await?;
            if !c.json {
                deliveries(&v, wide);
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
        "EVENTS DELIVERED",
        "FAILED ATTEMPTS",
        "DEAD LETTERS",
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
            text(&st["events_delivered"]),
            failed_attempts(&st["attempts"]).to_string(),
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
        ("events delivered", text(&st["events_delivered"])),
        ("attempts", attempts(&st["attempts"])),
        ("events dead-lettered", text(&st["events_dead_lettered"])),
        ("dead letters", text(&st["dead_letters"])),
        ("in flight", text(&st["in_flight"])),
        ("pending", text(&st["pending"])),
    ]);
    println!(
        "config:\n{}",
        serde_json::to_string_pretty(&s["config"]).unwrap_or_default()
    );
}

/// The status's attempts that failed (every outcome but `delivered`).
fn failed_attempts(a: &Value) -> u64 {
    ["retriable", "exhausted", "rejected"]
        .iter()
        .map(|o| a[o].as_u64().unwrap_or(0))
        .sum()
}

/// `6 (2 delivered, 3 retriable, 1 exhausted, 0 rejected)`, as `tributary_delivery_attempts_total` counts.
fn attempts(a: &Value) -> String {
    let outcomes = ["delivered", "retriable", "exhausted", "rejected"];
    let n = |o: &str| a[o].as_u64().unwrap_or(0);
    let parts: Vec<String> = outcomes.iter().map(|o| format!("{} {o}", n(o))).collect();
    format!("{} ({})", outcomes.iter().map(|o| n(o)).sum::<u64>(), parts.join(", "))
}

fn deliveries(v: &Value, wide: bool) {
    let mut clipped = false;
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
                cell(&text(&a["error"]), wide, &mut clipped),
            ]);
        }
    }
    t.print_or("no deliveries yet");
    if clipped {
        eprintln!("long errors clipped: --wide shows them in full");
    }
    if !v["next_after"].is_null() {
        eprintln!("more: --after {}", text(&v["next_after"]));
    }
}
