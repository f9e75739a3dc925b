//! Opaque signed tracking tokens and the key ring that makes and checks them.
//!
//! A token carries only a key id, the message's random tracking id and (for clicks) a link number,
//! followed by a 128-bit HMAC-SHA256 tag over all of it plus a kind byte (so an open token cannot be
//! replayed as a click token). The tracking id is 64 random bits chosen when the message is
//! registered, so a token says nothing about the recipient, the campaign, the destination or how many
//! messages exist. Keys rotate: new tokens use the newest key, and every key still in the ring keeps
//! verifying the tokens it made.
//!
//! Verification runs on the hot path: it decodes into a stack buffer and allocates nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 16;
const OPEN_LEN: usize = 1 + 8 + TAG_LEN;
const CLICK_LEN: usize = 1 + 8 + 2 + TAG_LEN;
/// A conversion reference: a click token's fields and the minute of the click.
const REF_LEN: usize = 1 + 8 + 2 + 4 + TAG_LEN;
/// Longest encoded token we accept (a conversion reference), in characters.
const MAX_ENCODED_LEN: usize = (REF_LEN * 4).div_ceil(3);

/// The message a verified open token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenToken {
    pub tracking_id: i64,
}

/// The message and link a verified click token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickToken {
    pub tracking_id: i64,
    pub link_no: u16,
}

/// The click a verified conversion reference names: its message, link and minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceToken {
    pub tracking_id: i64,
    pub link_no: u16,
    /// Minutes since 1970-01-01T00:00Z when the link was clicked.
    pub clicked_minute: u32,
}

/// Why a token was refused. Callers answer 404 either way; the reason feeds metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token has the wrong length or is not base64url")]
    Malformed,
    #[error("token names a signing key that is not in the key ring")]
    UnknownKey,
    #[error("token signature does not match")]
    BadSignature,
}

impl TokenError {
    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
        }
    }
}

/// A 256-bit secret with the id (1..=255) that tokens carry to name it.
#[derive(Clone)]
pub struct SigningKey {
    pub id: u8,
    pub secret: [u8; 32],
}

impl SigningKey {
    /// A new random key.
    pub fn generate(id: u8) -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source failed");
        SigningKey { id, secret }
    }

    /// Parses `ID:BASE64URL-SECRET` (the form of `--signing-key`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (id, secret) = spec
            .split_once(':')
            .ok_or("expected ID:SECRET, e.g. 1:<43 base64url characters>")?;
        let id: u8 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or("key id must be a number from 1 to 255")?;
        let bytes = URL_SAFE_NO_PAD
            .decode(secret.trim())
            .map_err(|_| "secret must be base64url without padding")?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "secret must be exactly 32 bytes (43 base64url characters)")?;
        Ok(SigningKey { id, secret })
    }

    /// The `ID:SECRET` form accepted by [`SigningKey::parse`].
    pub fn to_spec(&self) -> String {
        format!("{}:{}", self.id, URL_SAFE_NO_PAD.encode(self.secret))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Every key that may verify a token; the one with the highest id signs new tokens.
#[derive(Clone)]
pub struct KeyRing {
    active: u8,
    /// Indexed by key id; a keyed HMAC state is cloned per use instead of re-deriving the pads.
    macs: Box<[Option<HmacSha256>; 256]>,
}

impl KeyRing {
    pub fn new(keys: &[SigningKey]) -> Result<Self, String> {
        let active = keys
            .iter()
            .map(|k| k.id)
            .max()
            .ok_or("the key ring needs at least one signing key")?;
        let mut macs: Box<[Option<HmacSha256>; 256]> = Box::new(std::array::from_fn(|_| None));
        for key in keys {
            if key.id == 0 {
                return Err("signing key id 0 is reserved".into());
            }
            let slot = &mut macs[usize::from(key.id)];
            if slot.is_some() {
                return Err(format!("signing key {} is given twice", key.id));
            }
            *slot =
                Some(HmacSha256::new_from_slice(&key.secret).expect("HMAC takes any key length"));
        }
        Ok(KeyRing { active, macs })
    }

    pub fn active_key_id(&self) -> u8 {
        self.active
    }

    pub fn key_ids(&self) -> impl Iterator<Item = u8> + '_ {
        (1..=255u8).filter(|id| self.macs[usize::from(*id)].is_some())
    }

    pub fn sign_open(&self, tracking_id: i64) -> String {
        self.sign_message(b'o', tracking_id)
    }

    /// The token of a message's "stop tracking me" link (a kind of its own, so neither an open
    /// nor a click token can opt anyone out).
    pub fn sign_stop(&self, tracking_id: i64) -> String {
        self.sign_message(b'u', tracking_id)
    }

    fn sign_message(&self, kind: u8, tracking_id: i64) -> String {
        let mut buf = [0u8; OPEN_LEN];
        buf[0] = self.active;
        buf[1..9].copy_from_slice(&tracking_id.to_be_bytes());
        let tag = self.tag(kind, self.active, &buf[..9]);
        buf[9..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn sign_click(&self, tracking_id: i64, link_no: u16) -> String {
        let mut buf = [0u8; CLICK_LEN];
        buf[0] = self.active;
        buf[1..9].copy_from_slice(&tracking_id.to_be_bytes());
        buf[9..11].copy_from_slice(&link_no.to_be_bytes());
        let tag = self.tag(b'c', self.active, &buf[..11]);
        buf[11..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// What this installation answers at a host name's domain-check path: a proof, made with the
    /// active key (a kind of its own), that the name reaches a server holding this ring.
    pub fn domain_proof(&self, host: &str) -> String {
        let tag = self.tag(b'd', self.active, host.as_bytes());
        format!("{}.{}", self.active, URL_SAFE_NO_PAD.encode(tag))
    }

    /// Whether `proof` is what a server holding one of this ring's keys answers for `host`.
    pub fn is_domain_proof(&self, host: &str, proof: &str) -> bool {
        let Some((id, tag)) = proof.trim().split_once('.') else {
            return false;
        };
        let Ok(id) = id.parse::<u8>() else {
            return false;
        };
        if id == 0 || self.macs[usize::from(id)].is_none() {
            return false;
        }
        URL_SAFE_NO_PAD.encode(self.tag(b'd', id, host.as_bytes())) == tag
    }

    /// The reference a click adds to its destination when its campaign tracks conversions: what
    /// the sender's site reports a conversion with (a kind of its own: no other token passes).
    pub fn sign_reference(&self, tracking_id: i64, link_no: u16, clicked_minute: u32) -> String {
        let mut buf = [0u8; REF_LEN];
        buf[0] = self.active;
        buf[1..9].copy_from_slice(&tracking_id.to_be_bytes());
        buf[9..11].copy_from_slice(&link_no.to_be_bytes());
        buf[11..15].copy_from_slice(&clicked_minute.to_be_bytes());
        let tag = self.tag(b'r', self.active, &buf[..15]);
        buf[15..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(buf)
    }

    pub fn verify_reference(&self, token: &str) -> Result<ReferenceToken, TokenError> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let bytes = decode(token, REF_LEN, &mut buf)?;
        self.check(b'r', bytes, 15)?;
        Ok(ReferenceToken {
            tracking_id: i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
            link_no: u16::from_be_bytes(bytes[9..11].try_into().expect("2 bytes")),
            clicked_minute: u32::from_be_bytes(bytes[11..15].try_into().expect("4 bytes")),
        })
    }

    pub fn verify_open(&self, token: &str) -> Result<OpenToken, TokenError> {
        self.verify_message(b'o', token)
    }

    pub fn verify_stop(&self, token: &str) -> Result<OpenToken, TokenError> {
        self.verify_message(b'u', token)
    }

    fn verify_message(&self, kind: u8, token: &str) -> Result<OpenToken, TokenError> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let bytes = decode(token, OPEN_LEN, &mut buf)?;
        self.check(kind, bytes, 9)?;
        Ok(OpenToken {
            tracking_id: i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
        })
    }

    pub fn verify_click(&self, token: &str) -> Result<ClickToken, TokenError> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let bytes = decode(token, CLICK_LEN, &mut buf)?;
        self.check(b'c', bytes, 11)?;
        Ok(ClickToken {
            tracking_id: i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes")),
            link_no: u16::from_be_bytes(bytes[9..11].try_into().expect("2 bytes")),
        })
    }

    /// The tracking id a token claims, without checking its signature: only for noting that a
    /// message's token was tampered with (see classify::rules, `token:altered-before`).
    pub fn claimed_tracking_id(&self, token: &str, click: bool) -> Option<i64> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let len = if click { CLICK_LEN } else { OPEN_LEN };
        let bytes = decode(token, len, &mut buf).ok()?;
        Some(i64::from_be_bytes(bytes[1..9].try_into().ok()?))
    }

    fn check(&self, kind: u8, bytes: &[u8], body_len: usize) -> Result<(), TokenError> {
        let key_id = bytes[0];
        let mut mac = self.macs[usize::from(key_id)]
            .clone()
            .ok_or(TokenError::UnknownKey)?;
        mac.update(&[kind]);
        mac.update(&bytes[..body_len]);
        mac.verify_truncated_left(&bytes[body_len..])
            .map_err(|_| TokenError::BadSignature)
    }

    fn tag(&self, kind: u8, key_id: u8, body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.macs[usize::from(key_id)]
            .clone()
            .expect("the active key is in the ring");
        mac.update(&[kind]);
        mac.update(body);
        let full = mac.finalize().into_bytes();
        full[..TAG_LEN].try_into().expect("SHA-256 is 32 bytes")
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("keys", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

/// Decodes a token of exactly `len` bytes into `buf`, refusing anything else before doing any work.
fn decode<'b>(token: &str, len: usize, buf: &'b mut [u8]) -> Result<&'b [u8], TokenError> {
    if token.len() != (len * 4).div_ceil(3) {
        return Err(TokenError::Malformed);
    }
    match URL_SAFE_NO_PAD.decode_slice(token.as_bytes(), buf) {
        Ok(n) if n == len => Ok(&buf[..n]),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_proof_holds_for_its_host_and_the_keys_that_made_it() {
        let old = SigningKey::generate(1);
        let ring = KeyRing::new(std::slice::from_ref(&old)).unwrap();
        let proof = ring.domain_proof("t.example.com");
        assert!(ring.is_domain_proof("t.example.com", &proof));
        assert!(!ring.is_domain_proof("u.example.com", &proof));
        let rotated = KeyRing::new(&[old, SigningKey::generate(2)]).unwrap();
        assert!(rotated.is_domain_proof("t.example.com", &proof));
        let other = KeyRing::new(&[SigningKey::generate(1)]).unwrap();
        assert!(!other.is_domain_proof("t.example.com", &proof));
        for junk in ["", "x", "0.abc", "9.abc", "1.", &proof[..proof.len() - 1]] {
            assert!(!ring.is_domain_proof("t.example.com", junk), "{junk}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_token_verifies_to_what_it_was_signed_for(id: i64, link: u16, key in 1u8..=255) {
            let ring = KeyRing::new(&[SigningKey::generate(key)]).unwrap();
            proptest::prop_assert_eq!(ring.verify_open(&ring.sign_open(id)).unwrap().tracking_id, id);
            proptest::prop_assert_eq!(ring.verify_stop(&ring.sign_stop(id)).unwrap().tracking_id, id);
            let click = ring.verify_click(&ring.sign_click(id, link)).unwrap();
            proptest::prop_assert_eq!((click.tracking_id, click.link_no), (id, link));
        }

        #[test]
        fn arbitrary_strings_are_refused_without_panicking(token in "[A-Za-z0-9_=-]{0,60}|\\PC{0,40}") {
            let ring = KeyRing::new(&[SigningKey::generate(1)]).unwrap();
            proptest::prop_assert!(ring.verify_open(&token).is_err());
            proptest::prop_assert!(ring.verify_click(&token).is_err());
        }
    }

    #[test]
    fn a_stop_token_is_neither_an_open_token_nor_the_other_way_round() {
        let ring = KeyRing::new(&[SigningKey::generate(1)]).unwrap();
        let stop = ring.sign_stop(7);
        assert_eq!(ring.verify_stop(&stop).unwrap().tracking_id, 7);
        assert_eq!(ring.verify_open(&stop), Err(TokenError::BadSignature));
        assert_eq!(
            ring.verify_stop(&ring.sign_open(7)),
            Err(TokenError::BadSignature)
        );
    }

    fn ring(ids: &[u8]) -> KeyRing {
        let keys: Vec<_> = ids.iter().map(|id| SigningKey::generate(*id)).collect();
        KeyRing::new(&keys).unwrap()
    }

    #[test]
    fn open_and_click_tokens_round_trip() {
        let ring = ring(&[1]);
        let t = ring.sign_open(-42);
        assert_eq!(t.len(), 34);
        assert_eq!(ring.verify_open(&t), Ok(OpenToken { tracking_id: -42 }));
        let c = ring.sign_click(i64::MAX, 65535);
        assert_eq!(c.len(), 36);
        assert_eq!(
            ring.verify_click(&c),
            Ok(ClickToken {
                tracking_id: i64::MAX,
                link_no: 65535
            })
        );
    }

    #[test]
    fn a_conversion_reference_round_trips_and_is_no_other_token() {
        let ring = ring(&[1]);
        let r = ring.sign_reference(-7, 3, 29_000_000);
        assert_eq!(r.len(), 42);
        assert_eq!(
            ring.verify_reference(&r),
            Ok(ReferenceToken {
                tracking_id: -7,
                link_no: 3,
                clicked_minute: 29_000_000
            })
        );
        assert!(ring.verify_click(&r).is_err());
        assert!(ring.verify_reference(&ring.sign_click(-7, 3)).is_err());
        let mut forged = r.into_bytes();
        forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(ring.verify_reference(&forged).is_err());
    }

    #[test]
    fn an_open_token_is_not_a_click_token() {
        let ring = ring(&[1]);
        let t = ring.sign_open(7);
        assert_eq!(ring.verify_click(&t), Err(TokenError::Malformed));
        // Same length trick: a click body with an open tag must fail too.
        let c = ring.sign_click(7, 1);
        assert!(ring.verify_open(&c).is_err());
    }

    #[test]
    fn every_altered_character_is_refused() {
        let ring = ring(&[1]);
        let t = ring.sign_click(123456789, 3);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..t.len() {
            for &ch in alphabet {
                let mut bytes = t.clone().into_bytes();
                if bytes[i] == ch {
                    continue;
                }
                bytes[i] = ch;
                let altered = String::from_utf8(bytes).unwrap();
                assert!(ring.verify_click(&altered).is_err(), "accepted {altered}");
            }
        }
    }

    #[test]
    fn truncated_and_garbage_tokens_are_malformed() {
        let ring = ring(&[1]);
        let t = ring.sign_open(1);
        assert_eq!(ring.verify_open(&t[..33]), Err(TokenError::Malformed));
        assert_eq!(ring.verify_open(""), Err(TokenError::Malformed));
        assert_eq!(
            ring.verify_open("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            ring.verify_open(&"é".repeat(17)),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn rotated_keys_keep_old_tokens_working() {
        let k1 = SigningKey::generate(1);
        let old = KeyRing::new(std::slice::from_ref(&k1)).unwrap();
        let token = old.sign_open(99);
        let rotated = KeyRing::new(&[k1, SigningKey::generate(2)]).unwrap();
        assert_eq!(rotated.active_key_id(), 2);
        assert_eq!(rotated.verify_open(&token).unwrap().tracking_id, 99);
        let new = rotated.sign_open(99);
        assert_ne!(new, token);
        // A ring without the old key refuses its tokens.
        let only_new = KeyRing::new(&[SigningKey::generate(2)]).unwrap();
        assert_eq!(only_new.verify_open(&token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn a_token_from_another_installation_is_refused() {
        let token = ring(&[1]).sign_open(5);
        assert_eq!(
            ring(&[1]).verify_open(&token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn key_specs_parse_and_redact() {
        let key = SigningKey::generate(3);
        let parsed = SigningKey::parse(&key.to_spec()).unwrap();
        assert_eq!(parsed.id, 3);
        assert_eq!(parsed.secret, key.secret);
        assert!(!format!("{parsed:?}").contains(&key.to_spec()[2..]));
        assert!(SigningKey::parse("0:abc").is_err());
        assert!(SigningKey::parse("1:short").is_err());
        assert!(SigningKey::parse("nocolon").is_err());
    }
}
