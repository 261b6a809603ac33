//! Standard Webhooks signing and verification.
//!
//! - A secret is `whsec_` followed by the base64 (standard alphabet, padding optional) of the key bytes;
//!   the key must be at least [`MIN_SECRET_BYTES`] long. [`generate_secret`] makes a 32-byte one.
//! - The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
//!   `v1,` + base64(HMAC-SHA256(key, content)). `webhook-signature` holds one or more space-separated
//!   signatures (several while a secret is being rotated); a receiver accepts if any one matches.
//! - A receiver rejects timestamps more than [`DEFAULT_TOLERANCE`] away from its clock (replay guard).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use tributary_core::Timestamp;

use crate::SinkError;

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The shortest key accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 24;
/// The key length of generated secrets, in bytes.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// How far a timestamp may be from the verifier's clock, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Standard alphabet; accepts padded and unpadded input (secrets from other tools often lack padding).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// A parsed signing secret. Its `Debug` output does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Why a string is not a usable secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No `whsec_` prefix. (The value is not echoed: it is a secret.)
    #[error(
        "expected \"whsec_\" followed by the base64 of at least 24 random bytes; the given secret does not start with \"whsec_\""
    )]
    MissingPrefix,
    /// The part after the prefix is not base64.
    #[error("the part after \"whsec_\" is not standard base64: {0}")]
    NotBase64(#[source] base64::DecodeError),
    /// The key is too short.
    #[error("the key is {len} bytes; at least 24 are required (32 recommended)")]
    TooShort {
        /// The decoded length.
        len: usize,
    },
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let secret = secret.trim();
        let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
            return Err(SecretError::MissingPrefix);
        };
        let key = LENIENT.decode(encoded).map_err(SecretError::NotBase64)?;
        if key.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { len: key.len() });
        }
        Ok(Self { key })
    }

    /// A new random secret of [`GENERATED_SECRET_BYTES`] bytes from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::fill(&mut key[..]);
        Self { key }
    }

    /// The `whsec_…` form.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret({} bytes, redacted)", self.key.len())
    }
}

/// A new `whsec_` secret with a 32-byte random key.
pub fn generate_secret() -> String {
    WebhookSecret::generate().to_whsec()
}

/// The `webhook-signature` value (`v1,<base64>`) for one message signed with `secret` (`whsec_…`).
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SinkError> {
    let secret = WebhookSecret::parse(secret).map_err(|source| SinkError::Secret {
        field: "secret".into(),
        source,
    })?;
    Ok(secret.sign(msg_id, timestamp, body))
}

/// Why a delivery did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The verifier's own secret is malformed.
    #[error("the verifying secret is unusable: {0}")]
    Secret(#[source] SecretError),
    /// A required header is absent or not text.
    #[error("missing or non-text header {0}")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not whole unix seconds: {0:?}")]
    BadTimestamp(String),
    /// The timestamp is older than the tolerance allows (a replay, or a very slow delivery).
    #[error("webhook-timestamp {timestamp} is {age_secs}s old; at most {tolerance_secs}s is accepted")]
    TooOld {
        /// The header's value.
        timestamp: i64,
        /// Seconds before the verifier's clock.
        age_secs: i64,
        /// The tolerance.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error("webhook-timestamp {timestamp} is {ahead_secs}s in the future; at most {tolerance_secs}s is accepted")]
    TooNew {
        /// The header's value.
        timestamp: i64,
        /// Seconds after the verifier's clock.
        ahead_secs: i64,
        /// The tolerance.
        tolerance_secs: u64,
    },
    /// No `v1` signature matched.
    #[error("no v1 signature in webhook-signature matches the body")]
    NoMatch,
}

/// Verifies one delivery: the timestamp is within `tolerance` of `now` and at least one `v1` signature in
/// `signatures` (the `webhook-signature` header, space-separated) matches. Comparison is constant-time.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    tolerance: Duration,
    now: Timestamp,
) -> Result<(), VerifyError> {
    let secret = WebhookSecret::parse(secret).map_err(VerifyError::Secret)?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp(timestamp.chars().take(40).collect()))?;
    let tolerance_secs = tolerance.as_secs();
    let delta = now.unix_secs().saturating_sub(ts);
    if delta > 0 && delta.unsigned_abs() > tolerance_secs {
        return Err(VerifyError::TooOld {
            timestamp: ts,
            age_secs: delta,
            tolerance_secs,
        });
    }
    if delta < 0 && delta.unsigned_abs() > tolerance_secs {
        return Err(VerifyError::TooNew {
            timestamp: ts,
            ahead_secs: -delta,
            tolerance_secs,
        });
    }
    let expected = secret.mac(msg_id, ts, body);
    for candidate in signatures.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        if expected.clone().verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

/// [`verify`] reading `webhook-id`, `webhook-timestamp` and `webhook-signature` from `headers`.
pub fn verify_headers(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    tolerance: Duration,
    now: Timestamp,
) -> Result<(), VerifyError> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::MissingHeader(name))
    };
    verify(
        secret,
        get("webhook-id")?,
        get("webhook-timestamp")?,
        get("webhook-signature")?,
        body,
        tolerance,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const REF_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const REF_TS: i64 = 1614265330;
    const REF_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const REF_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    #[test]
    fn sign_matches_the_reference_vector() {
        assert_eq!(sign(REF_SECRET, REF_ID, REF_TS, REF_BODY).unwrap(), REF_SIG);
    }

    #[test]
    fn verify_accepts_genuine_and_rejects_tampering_staleness_and_wrong_secret() {
        let ts = REF_TS.to_string();
        let check = |secret: &str, ts: &str, sigs: &str, body: &[u8], now: i64| {
            verify(secret, REF_ID, ts, sigs, body, DEFAULT_TOLERANCE, at(now))
        };
        assert_eq!(check(REF_SECRET, &ts, REF_SIG, REF_BODY, REF_TS), Ok(()));
        // Within tolerance either way.
        assert_eq!(check(REF_SECRET, &ts, REF_SIG, REF_BODY, REF_TS + 300), Ok(()));
        assert_eq!(check(REF_SECRET, &ts, REF_SIG, REF_BODY, REF_TS - 300), Ok(()));

        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            check(REF_SECRET, &ts, REF_SIG, tampered, REF_TS),
            Err(VerifyError::NoMatch)
        );
        assert!(matches!(
            check(REF_SECRET, &ts, REF_SIG, REF_BODY, REF_TS + 301),
            Err(VerifyError::TooOld { age_secs: 301, .. })
        ));
        assert!(matches!(
            check(REF_SECRET, &ts, REF_SIG, REF_BODY, REF_TS - 301),
            Err(VerifyError::TooNew { ahead_secs: 301, .. })
        ));
        // A timestamp changed without re-signing fails the signature even when fresh.
        let moved = (REF_TS + 1).to_string();
        assert_eq!(
            check(REF_SECRET, &moved, REF_SIG, REF_BODY, REF_TS),
            Err(VerifyError::NoMatch)
        );
        let other = generate_secret();
        assert_eq!(check(&other, &ts, REF_SIG, REF_BODY, REF_TS), Err(VerifyError::NoMatch));
        assert!(matches!(
            check(REF_SECRET, "soon", REF_SIG, REF_BODY, REF_TS),
            Err(VerifyError::BadTimestamp(_))
        ));
    }

    #[test]
    fn verify_accepts_any_matching_v1_signature_among_several() {
        let ts = REF_TS.to_string();
        let other = sign(&generate_secret(), REF_ID, REF_TS, REF_BODY).unwrap();
        let sig_b64 = REF_SIG.strip_prefix("v1,").unwrap();
        let header = format!("v1a,{sig_b64} v1,not-base64! {other} {REF_SIG}");
        let now = at(REF_TS);
        let ok = verify(REF_SECRET, REF_ID, &ts, &header, REF_BODY, DEFAULT_TOLERANCE, now);
        assert_eq!(ok, Ok(()));
        // The same signature under another version tag does not count.
        let wrong_version = format!("v2,{sig_b64}");
        let res = verify(
            REF_SECRET,
            REF_ID,
            &ts,
            &wrong_version,
            REF_BODY,
            DEFAULT_TOLERANCE,
            now,
        );
        assert_eq!(res, Err(VerifyError::NoMatch));
    }

    #[test]
    fn verify_headers_reads_the_standard_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", HeaderValue::from_static(REF_ID));
        headers.insert("webhook-timestamp", HeaderValue::from(REF_TS));
        let now = at(REF_TS);
        assert_eq!(
            verify_headers(REF_SECRET, &headers, REF_BODY, DEFAULT_TOLERANCE, now),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
        headers.insert("webhook-signature", HeaderValue::from_static(REF_SIG));
        assert_eq!(
            verify_headers(REF_SECRET, &headers, REF_BODY, DEFAULT_TOLERANCE, now),
            Ok(())
        );
    }

    #[test]
    fn secrets_are_checked_and_generated_ones_are_32_bytes() {
        let generated = generate_secret();
        assert!(generated.starts_with("whsec_"));
        assert_ne!(generated, generate_secret());
        let parsed = WebhookSecret::parse(&generated).unwrap();
        assert_eq!(parsed.to_whsec(), generated);
        assert!(format!("{parsed:?}").contains("32 bytes"));
        assert!(!format!("{parsed:?}").contains(&generated[6..]));

        // Unpadded base64 of 24 bytes (the reference secret) is fine.
        assert!(WebhookSecret::parse(REF_SECRET).is_ok());
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert!(matches!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SecretError::NotBase64(_))
        ));
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::TooShort { len: 5 })
        );
        let err = sign("whsec_c2hvcnQ=", REF_ID, REF_TS, REF_BODY).unwrap_err();
        assert!(err.to_string().contains("at least 24"), "{err}");
    }
}
