//! Tenants and their API keys, kept in the store's [`Catalog`] and changed by compare-and-set.
//!
//! - [`RecordKind::Tenant`] `{name}` → the tenant (JSON).
//! - [`RecordKind::ApiKey`] `{id}` → the key record: its tenant, the sha256 of the whole key, created and
//!   revoked times.
//!
//! A key is `trb_{id}_{secret}`: `id` is 12 hex characters that locate the record, `secret` 32 random bytes
//! in hex. Only the hash is stored; the key itself is shown once, when created. Verification compares
//! hashes in constant time.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tributary_core::catalog::{Catalog, Entry, Expect, RecordKind};
use tributary_core::{StoreError, Timestamp};

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Unique name (letters, digits, `-`, `_`).
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A tenant API key as stored (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public part of the key (`trb_{id}_...`).
    pub id: String,
    /// The tenant it acts as.
    pub tenant: String,
    /// sha256 of the whole key, hex.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub hash: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Why a tenant operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// Bad name.
    #[error("tenant name: expected 1 to 64 letters, digits, '-' or '_', got {0:?}")]
    InvalidName(String),
    /// Exists already.
    #[error("a tenant named {0:?} already exists")]
    Exists(String),
    /// No such tenant.
    #[error("no tenant named {0:?}")]
    NoTenant(String),
    /// No such key.
    #[error("no API key {0:?} for this tenant")]
    NoKey(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Tenant operations over a store's catalog.
pub struct Tenants<'a> {
    store: &'a dyn Catalog,
}

/// The records of a listing that parse as `T` (one that does not is logged and left out).
fn parsed<T: serde::de::DeserializeOwned>(kind: RecordKind, entries: Vec<Entry>) -> Vec<T> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let (name, error) = match entry {
            Entry::Ok { name, record } => match serde_json::from_str(&record.value) {
                Ok(v) => {
                    out.push(v);
                    continue;
                }
                Err(e) => (name, e.to_string()),
            },
            Entry::Broken { name, error } => (name, error),
        };
        tracing::warn!(kind = kind.as_str(), %name, %error, "a stored record cannot be read; it is left out");
    }
    out
}

impl<'a> Tenants<'a> {
    /// Over this store.
    pub fn new(store: &'a dyn Catalog) -> Self {
        Self { store }
    }

    /// Creates a tenant.
    pub async fn create(&self, name: &str) -> Result<Tenant, TenantError> {
        if !valid_name(name) {
            return Err(TenantError::InvalidName(name.to_owned()));
        }
        let t = Tenant {
            name: name.to_owned(),
            created_at: Timestamp::now(),
        };
        let json = serde_json::to_string(&t).expect("serializes");
        match self
            .store
            .compare_and_set(RecordKind::Tenant, name, Expect::Absent, Some(&json))
            .await?
        {
            Ok(_) => Ok(t),
            Err(_) => Err(TenantError::Exists(name.to_owned())),
        }
    }

    /// One tenant.
    pub async fn get(&self, name: &str) -> Result<Option<Tenant>, TenantError> {
        if !valid_name(name) {
            return Ok(None);
        }
        let raw = self.store.record(RecordKind::Tenant, name).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r.value).ok()))
    }

    /// Every tenant, by name.
    pub async fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        let entries = self.store.records(RecordKind::Tenant, "").await?;
        Ok(parsed(RecordKind::Tenant, entries))
    }

    /// Creates a key for a tenant: the record and the key itself (shown once).
    pub async fn create_key(&self, tenant: &str) -> Result<(ApiKey, String), TenantError> {
        if self.get(tenant).await?.is_none() {
            return Err(TenantError::NoTenant(tenant.to_owned()));
        }
        // A key id is 48 random bits: a collision with an existing key is possible in principle, and
        // the compare-and-set makes it a retry with another id, never an overwrite.
        loop {
            let mut id = [0u8; 6];
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut id);
            rand::rng().fill_bytes(&mut secret);
            let id = hex::encode(id);
            let key = format!("trb_{id}_{}", hex::encode(secret));
            let record = ApiKey {
                id: id.clone(),
                tenant: tenant.to_owned(),
                hash: hash(&key),
                created_at: Timestamp::now(),
                revoked_at: None,
            };
            let json = serde_json::to_string(&record).expect("serializes");
            if self
                .store
                .compare_and_set(RecordKind::ApiKey, &id, Expect::Absent, Some(&json))
                .await?
                .is_ok()
            {
                let shown = ApiKey {
                    hash: String::new(),
                    ..record
                };
                return Ok((shown, key));
            }
        }
    }

    /// A tenant's keys (without hashes).
    pub async fn keys(&self, tenant: &str) -> Result<Vec<ApiKey>, TenantError> {
        if self.get(tenant).await?.is_none() {
            return Err(TenantError::NoTenant(tenant.to_owned()));
        }
        let entries = self.store.records(RecordKind::ApiKey, "").await?;
        Ok(parsed::<ApiKey>(RecordKind::ApiKey, entries)
            .into_iter()
            .filter(|k| k.tenant == tenant)
            .map(|k| ApiKey {
                hash: String::new(),
                ..k
            })
            .collect())
    }

    /// Revokes a key: it stops working at once.
    pub async fn revoke_key(&self, tenant: &str, id: &str) -> Result<ApiKey, TenantError> {
        // Read, change, compare-and-set; a concurrent change of the record means reading it again.
        loop {
            let raw = self.store.record(RecordKind::ApiKey, id).await?;
            let (version, mut record) = raw
                .and_then(|r| Some((r.version, serde_json::from_str::<ApiKey>(&r.value).ok()?)))
                .filter(|(_, k)| k.tenant == tenant)
                .ok_or_else(|| TenantError::NoKey(id.to_owned()))?;
            if record.revoked_at.is_none() {
                record.revoked_at = Some(Timestamp::now());
                let json = serde_json::to_string(&record).expect("serializes");
                let set = self
                    .store
                    .compare_and_set(RecordKind::ApiKey, id, Expect::Version(version), Some(&json));
                if set.await?.is_err() {
                    continue;
                }
            }
            return Ok(ApiKey {
                hash: String::new(),
                ..record
            });
        }
    }

    /// The tenant a bearer key acts as, if it is a valid, unrevoked tenant key.
    pub async fn authenticate(&self, key: &str) -> Result<Option<String>, TenantError> {
        let Some(id) = key.strip_prefix("trb_").and_then(|rest| rest.split('_').next()) else {
            return Ok(None);
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let raw = self.store.record(RecordKind::ApiKey, id).await?;
        let Some(record) = raw.and_then(|r| serde_json::from_str::<ApiKey>(&r.value).ok()) else {
            return Ok(None);
        };
        let given = hash(key);
        let same = given.len() == record.hash.len()
            && given
                .bytes()
                .zip(record.hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        Ok((same && record.revoked_at.is_none()).then_some(record.tenant))
    }
}
