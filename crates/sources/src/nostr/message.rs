//! What relays send (NIP-01, NIP-42, NIP-77), parsed from one WebSocket text message. The event of an
//! `EVENT` message is kept as its raw JSON text, to be bounded, parsed and verified by the archive
//! ([`super::NostrEvent::parse`]); everything else is small and parsed here.

use serde_json::value::RawValue;

/// A message from a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayMessage {
    /// `["EVENT", sub, event]`: an event answering subscription `sub`.
    Event {
        /// The subscription.
        sub: String,
        /// The event's JSON text, as sent.
        event: String,
    },
    /// `["EOSE", sub]`: the stored events of `sub` have all been sent.
    Eose {
        /// The subscription.
        sub: String,
    },
    /// `["CLOSED", sub, message]`: the relay ended `sub`.
    Closed {
        /// The subscription.
        sub: String,
        /// Why (`error: …`, `auth-required: …`, …).
        message: String,
    },
    /// `["NOTICE", message]`: something for a human.
    Notice {
        /// The text.
        message: String,
    },
    /// `["OK", id, accepted, message]`: the answer to an `EVENT` published.
    Ok {
        /// The event id (hex).
        id: String,
        /// Whether the relay stored it.
        accepted: bool,
        /// Why not, or a note.
        message: String,
    },
    /// `["AUTH", challenge]`: the relay asks for NIP-42 authentication.
    Auth {
        /// The challenge.
        challenge: String,
    },
    /// `["NEG-MSG", sub, hex]` (NIP-77): a negentropy message.
    NegMsg {
        /// The subscription.
        sub: String,
        /// The message, hex.
        message: String,
    },
    /// `["NEG-ERR", sub, reason]` (NIP-77).
    NegErr {
        /// The subscription.
        sub: String,
        /// Why.
        message: String,
    },
}

/// The longest subscription id, notice or challenge kept (longer ones are cut).
const MAX_TEXT: usize = 1024;

fn cut(s: String) -> String {
    match super::prefix(&s, MAX_TEXT).len() {
        n if n == s.len() => s,
        n => s[..n].to_owned(),
    }
}

impl RelayMessage {
    /// Parses one text message; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| format!("not a JSON array ({e})"))?;
        let string = |i: usize, what: &str| -> Result<String, String> {
            let raw = parts.get(i).ok_or_else(|| format!("{what} is missing (item {i})"))?;
            serde_json::from_str::<String>(raw.get())
                .map(cut)
                .map_err(|_| format!("{what} (item {i}) is not a string"))
        };
        let kind = string(0, "the message type")?;
        let arity = |n: usize| -> Result<(), String> {
            if parts.len() < n {
                Err(format!("a {kind} message has {n} items, this one {}", parts.len()))
            } else {
                Ok(())
            }
        };
        Ok(match kind.as_str() {
            "EVENT" => {
                arity(3)?;
                Self::Event {
                    sub: string(1, "the subscription id")?,
                    event: parts[2].get().to_owned(),
                }
            }
            "EOSE" => Self::Eose {
                sub: string(1, "the subscription id")?,
            },
            "CLOSED" => Self::Closed {
                sub: string(1, "the subscription id")?,
                message: string(2, "the message").unwrap_or_default(),
            },
            "NOTICE" => Self::Notice {
                message: string(1, "the notice")?,
            },
            "OK" => {
                arity(3)?;
                Self::Ok {
                    id: string(1, "the event id")?,
                    accepted: serde_json::from_str(parts[2].get())
                        .map_err(|_| "the accepted flag (item 2) is not true or false".to_owned())?,
                    message: string(3, "the message").unwrap_or_default(),
                }
            }
            "AUTH" => Self::Auth {
                challenge: string(1, "the challenge")?,
            },
            "NEG-MSG" => Self::NegMsg {
                sub: string(1, "the subscription id")?,
                message: {
                    let raw = parts.get(2).ok_or("the negentropy message is missing (item 2)")?;
                    serde_json::from_str::<String>(raw.get())
                        .map_err(|_| "the negentropy message (item 2) is not a string".to_owned())?
                },
            },
            "NEG-ERR" => Self::NegErr {
                sub: string(1, "the subscription id")?,
                message: string(2, "the reason").unwrap_or_default(),
            },
            other => return Err(format!("unknown message type {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_messages() {
        let m = RelayMessage::parse(r#"["EVENT","s1",{"id":"x", "kind": 1}]"#).unwrap();
        assert_eq!(
            m,
            RelayMessage::Event {
                sub: "s1".into(),
                event: r#"{"id":"x", "kind": 1}"#.into()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["EOSE","s1"]"#).unwrap(),
            RelayMessage::Eose { sub: "s1".into() }
        );
        assert_eq!(
            RelayMessage::parse(r#"["CLOSED","s1","error: shutting down"]"#).unwrap(),
            RelayMessage::Closed {
                sub: "s1".into(),
                message: "error: shutting down".into()
            }
        );
        assert_eq!(
            RelayMessage::parse(r#"["OK","ab",false,"duplicate: have it"]"#).unwrap(),
            RelayMessage::Ok {
                id: "ab".into(),
                accepted: false,
                message: "duplicate: have it".into()
            }
        );
        assert!(matches!(
            RelayMessage::parse(r#"["NOTICE","slow down"]"#).unwrap(),
            RelayMessage::Notice { .. }
        ));
        assert!(matches!(
            RelayMessage::parse(r#"["NEG-MSG","n","6100"]"#).unwrap(),
            RelayMessage::NegMsg { .. }
        ));
    }

    #[test]
    fn garbage_says_what_is_wrong() {
        let e = |s: &str| RelayMessage::parse(s).unwrap_err();
        assert!(e("{").contains("not a JSON array"));
        assert!(e("[]").contains("message type is missing"));
        assert!(e("[1]").contains("not a string"));
        assert!(e(r#"["EVENT","s"]"#).contains("3 items"));
        assert!(e(r#"["OK","a","yes"]"#).contains("true or false"));
        assert!(e(r#"["HELLO"]"#).contains("unknown message type"));
        let long = format!(r#"["NOTICE","{}"]"#, "x".repeat(5000));
        let RelayMessage::Notice { message } = RelayMessage::parse(&long).unwrap() else {
            panic!()
        };
        assert_eq!(message.len(), MAX_TEXT);
    }
}
