//! API tokens: `mb_` followed by 32 random bytes in base64url. Only their SHA-256 is stored, so a
//! copy of the database does not hand out access, and lookup by hash needs no timing-safe compare.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "mb_";

/// A new random API token, in the form shown to the user once.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
