//! Signing NIP-01 events with a secret key (BIP-340 Schnorr through libsecp256k1): the monitor's kind
//! 30166 and 10166 announcements, and the events the tests and the benchmark publish to local relays.

use super::NostrEvent;
use bitcoin::secp256k1::{Keypair, Message, Secp256k1, SignOnly};
use std::sync::OnceLock;

fn secp() -> &'static Secp256k1<SignOnly> {
    static CTX: OnceLock<Secp256k1<SignOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::signing_only)
}

/// A secret key and its x-only public key.
#[derive(Clone)]
pub struct Keys {
    pair: Keypair,
    /// The x-only public key.
    pub pubkey: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys {{ pubkey: {} }}", hex::encode(self.pubkey))
    }
}

impl Keys {
    /// Keys from a 32-byte secret key.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, String> {
        let pair = Keypair::from_seckey_slice(secp(), secret)
            .map_err(|_| "the secret key is not a valid secp256k1 key (0, or not below the group order)".to_owned())?;
        let pubkey = pair.x_only_public_key().0.serialize();
        Ok(Self { pair, pubkey })
    }

    /// Keys from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret)
            .map_err(|_| "expected the secret key as 64 hex digits".to_owned())?;
        Self::from_secret(&secret)
    }

    /// A signed event: its id computed from the NIP-01 serialisation, then signed.
    pub fn sign(&self, kind: u16, created_at: u64, tags: Vec<Vec<String>>, content: String) -> NostrEvent {
        let mut e = NostrEvent {
            id: [0; 32],
            pubkey: self.pubkey,
            created_at,
            kind,
            tags,
            content,
            sig: [0; 64],
        };
        e.id = e.computed_id();
        e.sig = secp()
            .sign_schnorr_no_aux_rand(&Message::from_digest(e.id), &self.pair)
            .serialize();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_events_verify_and_a_changed_one_does_not() {
        let keys = Keys::from_hex(&"11".repeat(32)).unwrap();
        let e = keys.sign(1, 1_700_000_000, vec![vec!["t".into(), "x".into()]], "hello".into());
        e.verify().unwrap();
        let mut changed = e.clone();
        changed.content.push('!');
        assert_eq!(changed.verify().unwrap_err().reason(), "id_mismatch");
        assert!(Keys::from_hex(&"00".repeat(32)).is_err());
        assert!(Keys::from_hex("xyz").is_err());
    }
}
