//! The [`Catalog`]: the objects operators and the API create — tenants, API keys, subscriptions, sink
//! secrets, idempotent answers — each a record with a version, changed only by compare-and-set.
//!
//! Why versions: two requests (or, with a shared store, two nodes) that read a record and write it back
//! must not lose one of the writes. Every change names the version it read ([`Expect`]); the store
//! applies it only if that is still the current version, atomically, and answers [`Conflict`]
//! otherwise. A deleted record leaves a tombstone that keeps its version, so a record deleted and made
//! again never repeats a version (no ABA): a writer holding the old version still conflicts.
//!
//! Values are the caller's text (JSON, as a rule); the store does not decode them. A record whose
//! bytes the store cannot read back is listed as [`Entry::Broken`], never an error of the whole list,
//! so one bad record cannot hide the others or stop a node from starting.

use crate::StoreError;
use async_trait::async_trait;

/// What a catalog record is. Each kind is its own namespace of names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// A tenant, by name.
    Tenant,
    /// An API key record, by key id.
    ApiKey,
    /// A subscription created through the API, by name.
    Subscription,
    /// When a subscription was deleted through the API, by name (a new subscription may not take the
    /// name, which would inherit the deleted one's delivery history).
    DeletedSubscription,
    /// A subscription's sink secret, by subscription name.
    SinkSecret,
    /// A kept answer to a request with an `Idempotency-Key`, by bucket and caller.
    Idempotency,
}

impl RecordKind {
    /// The kind's name in logs, errors and stored keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::ApiKey => "api-key",
            Self::Subscription => "subscription",
            Self::DeletedSubscription => "deleted-subscription",
            Self::SinkSecret => "sink-secret",
            Self::Idempotency => "idempotency",
        }
    }
}

/// A record's version: 1 when first written, one more at every change (a delete included).
pub type Version = u64;

/// A live record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// Its current version.
    pub version: Version,
    /// Its value.
    pub value: String,
}

/// One record of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A record read back.
    Ok {
        /// Its name.
        name: String,
        /// Its version and value.
        record: Versioned,
    },
    /// A record the store cannot read back: reported, never fatal.
    Broken {
        /// Its name (as far as it could be read).
        name: String,
        /// What is wrong with it.
        error: String,
    },
}

/// What a change expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No live record (never written, or deleted): the change creates it.
    Absent,
    /// The live record at this version.
    Version(Version),
    /// Whatever is there (a write that does not depend on what it replaces, such as a migration).
    Any,
}

/// A change was refused because the record is not what it expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} record {name:?} changed concurrently (now {})", match .current { Some(v) => format!("version {v}"), None => "absent".into() })]
pub struct Conflict {
    /// The kind.
    pub kind: &'static str,
    /// The name.
    pub name: String,
    /// The live record's version, or `None` when there is none.
    pub current: Option<Version>,
}

/// The catalog of a store (see the module docs). Every change is durable when it answers.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// The live record, if there is one (a tombstone is none).
    async fn record(&self, kind: RecordKind, name: &str) -> Result<Option<Versioned>, StoreError>;
    /// The live records of `kind` whose name starts with `prefix`, in name order, with those that cannot
    /// be read back as [`Entry::Broken`].
    async fn records(&self, kind: RecordKind, prefix: &str) -> Result<Vec<Entry>, StoreError>;
    /// Writes `value` (or, with `None`, deletes the record) if the record is as `expect` says,
    /// atomically; answers the new version, or the [`Conflict`].
    async fn compare_and_set(
        &self,
        kind: RecordKind,
        name: &str,
        expect: Expect,
        value: Option<&str>,
    ) -> Result<Result<Version, Conflict>, StoreError>;
}

/// The rule every backend applies to a compare-and-set, in one place: given what is stored (`None`: never
/// written; else its version and whether it is live, not a tombstone), the version the change writes,
/// or the [`Conflict`]. Deleting (`deleting`) what is not live is a conflict too.
pub fn next_version(
    kind: RecordKind,
    name: &str,
    expect: Expect,
    stored: Option<(Version, bool)>,
    deleting: bool,
) -> Result<Version, Conflict> {
    let (version, live) = stored.unwrap_or((0, false));
    let current = live.then_some(version);
    let meets = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Version(v) => current == Some(v),
    };
    if !meets || (deleting && current.is_none()) {
        return Err(Conflict {
            kind: kind.as_str(),
            name: name.to_owned(),
            current,
        });
    }
    Ok(version + 1)
}
