//! The bundled Lightning gossip sample; ids are the library's ln-history `gossip_id`.

pub use tributary_sources::lightning::gossip_id;
pub use tributary_sources::lightning::wire::type_name;

/// Real mainnet gossip, one hex message per line (see `fixtures/lightning/README.md`).
pub const SAMPLE_HEX: &str = include_str!("../../../fixtures/lightning/cln_gossip_store_sample.hex");

/// The sample's messages, decoded from hex.
pub fn sample_messages() -> Vec<Vec<u8>> {
    SAMPLE_HEX
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| hex::decode(l.trim()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_bundled_and_every_message_has_an_id() {
        let msgs = sample_messages();
        assert_eq!(msgs.len(), 139);
        assert!(msgs.iter().all(|m| gossip_id(m).is_some()));
        assert_eq!(type_name(258), Some("channel_update"));
    }
}
