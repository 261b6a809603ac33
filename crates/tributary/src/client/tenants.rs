//! `tributary tenants ...` (admin key): create and list tenants; create, list and revoke their API keys.
//! A new key is shown once: the node keeps only its hash.

use super::table::{Table, text, time};
use super::{Client, print_json, seg};
use serde_json::{Value, json};

/// Tenant commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Create a tenant.
    Create {
        /// Letters, digits, `-` and `_`.
        name: String,
    },
    /// Every tenant.
    List,
    /// A tenant's API keys.
    #[command(subcommand)]
    Keys(KeyCmd),
}

/// API key commands.
#[derive(clap::Subcommand)]
pub enum KeyCmd {
    /// Create an API key for a tenant; it is shown once.
    Create {
        /// The tenant.
        tenant: String,
    },
    /// A tenant's keys (ids and times, never the keys).
    List {
        /// The tenant.
        tenant: String,
    },
    /// Revoke a key: it stops working at once.
    Revoke {
        /// The tenant.
        tenant: String,
        /// The key's id (`tenants keys list` shows it).
        id: String,
    },
}

/// Runs a tenant command.
pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    let v = match cmd {
        Cmd::Create { name } => {
            let v = c.post("/v1/tenants", Some(&json!({ "name": name }))).await?;
            if !c.json {
                println!("created tenant {name}; next: tributary tenants keys create {name}");
            }
            v
        }
        Cmd::List => {
            let v = c.get("/v1/tenants", &[]).await?;
            if !c.json {
                let mut t = Table::new(&["NAME", "CREATED"]);
                for x in v["tenants"].as_array().into_iter().flatten() {
                    t.row(vec![text(&x["name"]), time(&x["created_at"])]);
                }
                t.print_or("no tenants");
            }
            v
        }
        Cmd::Keys(KeyCmd::Create { tenant }) => {
            let v = c.post(&format!("/v1/tenants/{}/keys", seg(&tenant)), None).await?;
            if !c.json {
                println!("{}", text(&v["key"]));
                eprintln!(
                    "API key {} for tenant {tenant}: store it now, it cannot be shown again",
                    text(&v["id"])
                );
            }
            v
        }
        Cmd::Keys(KeyCmd::List { tenant }) => {
            let v = c.get(&format!("/v1/tenants/{}/keys", seg(&tenant)), &[]).await?;
            if !c.json {
                keys(&v);
            }
            v
        }
        Cmd::Keys(KeyCmd::Revoke { tenant, id }) => {
            let path = format!("/v1/tenants/{}/keys/{}", seg(&tenant), seg(&id));
            let v = c.call(reqwest::Method::DELETE, &path, None).await?;
            if !c.json {
                println!("revoked key {id} of tenant {tenant}");
            }
            v
        }
    };
    if c.json {
        print_json(&v);
    }
    Ok(())
}

fn keys(v: &Value) {
    let mut t = Table::new(&["ID", "CREATED", "REVOKED"]);
    for k in v["keys"].as_array().into_iter().flatten() {
        t.row(vec![text(&k["id"]), time(&k["created_at"]), time(&k["revoked_at"])]);
    }
    t.print_or("no keys");
}
