//! The Bitcoin network whose gossip is accepted, and its genesis hash as gossip carries it.
//!
//! `chain_hash` in BOLT #7 is the genesis block hash in wire (internal) byte order; mainnet's is
//! `6fe28c0ab6f1b372…0000000000` on the wire and `000000000019d6689c…` in display order.

use bitcoin::constants::ChainHash;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The Bitcoin network whose gossip is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Bitcoin mainnet (the default).
    #[default]
    Mainnet,
    /// testnet3.
    Testnet,
    /// testnet4.
    Testnet4,
    /// signet.
    Signet,
    /// regtest.
    Regtest,
}

impl Network {
    /// Every network, in declaration order.
    pub const ALL: [Network; 5] = [
        Self::Mainnet,
        Self::Testnet,
        Self::Testnet4,
        Self::Signet,
        Self::Regtest,
    ];

    /// The genesis block hash in wire order, as gossip messages carry it.
    pub fn chain_hash(self) -> [u8; 32] {
        let n = match self {
            Self::Mainnet => bitcoin::Network::Bitcoin,
            Self::Testnet => bitcoin::Network::Testnet,
            Self::Testnet4 => bitcoin::Network::Testnet4,
            Self::Signet => bitcoin::Network::Signet,
            Self::Regtest => bitcoin::Network::Regtest,
        };
        ChainHash::using_genesis_block_const(n).to_bytes()
    }

    /// The network with this genesis hash (wire order).
    pub fn from_chain_hash(hash: &[u8; 32]) -> Option<Self> {
        Self::ALL.into_iter().find(|n| &n.chain_hash() == hash)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mainnet => "mainnet",
            Self::Testnet => "testnet",
            Self::Testnet4 => "testnet4",
            Self::Signet => "signet",
            Self::Regtest => "regtest",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mainnet" | "bitcoin" => Ok(Self::Mainnet),
            "testnet" | "testnet3" => Ok(Self::Testnet),
            "testnet4" => Ok(Self::Testnet4),
            "signet" => Ok(Self::Signet),
            "regtest" => Ok(Self::Regtest),
            _ => Err(format!(
                "expected mainnet, testnet, testnet4, signet or regtest, got {s:?}"
            )),
        }
    }
}
