//! Ids and the rules for names a user gives: recipient ids, campaign names, and how the audit
//! log names a recipient.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Defines an id type: a number the database gave, kept apart from the other kinds of id so that
/// one is never passed for another. It reads and writes as the bare number (JSON, URLs, flags,
/// and `{:?}`, so that messages listing ids read as before).
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id!(
    /// A campaign.
    CampaignId
);
id!(
    /// A stored message: one mail to one recipient (not its tracking id, which its tokens carry).
    MessageId
);
id!(
    /// A stored open or click.
    EventId
);

/// The recipient id of a message registered with tracking level `anonymous`: this prefix and a
/// random part, so that nothing stored points to the recipient.
pub const ANONYMOUS_RECIPIENT: &str = "anonymous:";

/// Recipient ids are the sender's own identifiers (a CRM id, a hashed address…), kept short.
pub const MAX_RECIPIENT_ID_LEN: usize = 256;

/// A recipient id as a sender, an analyst or an admin gives it: trimmed, 1 to 256 bytes. The
/// error says what is wrong with it ("is empty").
pub fn parse_recipient_id(id: &str) -> Result<String, &'static str> {
    let id = id.trim();
    if id.is_empty() {
        return Err("is empty");
    }
    if id.len() > MAX_RECIPIENT_ID_LEN {
        return Err("is longer than 256 bytes");
    }
    Ok(id.to_string())
}

/// The hidden link's number; real links count from 1.
pub const HONEYPOT_LINK: u16 = 0;

/// How the audit log names a recipient: a SHA-256 prefix of the id, never the id itself, so that
/// erasing a recipient leaves nothing readable of them while "was X erased?" can still be
/// answered by hashing X.
pub fn recipient_ref(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("recipient sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_and_print_as_their_number() {
        let ids = vec![MessageId(1), MessageId(20)];
        assert_eq!(format!("{ids:?} {}", ids[1]), "[1, 20] 20");
        assert_eq!(serde_json::to_string(&ids).unwrap(), "[1,20]");
        assert_eq!("7".parse(), Ok(CampaignId(7)));
        assert!("seven".parse::<CampaignId>().is_err());
    }

    #[test]
    fn recipient_ids_are_trimmed_and_one_to_256_bytes() {
        assert_eq!(
            parse_recipient_id("  ann@example.com "),
            Ok("ann@example.com".into())
        );
        assert_eq!(parse_recipient_id(" \t"), Err("is empty"));
        assert!(parse_recipient_id(&"é".repeat(128)).is_ok());
        assert_eq!(
            parse_recipient_id(&"x".repeat(257)),
            Err("is longer than 256 bytes")
        );
    }
}
