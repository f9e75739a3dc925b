//! Tracking tokens: any string given as an open, click or stop token is refused or verified
//! without panicking, a verified token is the one the ring would sign, and every token signed for
//! a message (and link) verifies to exactly that and to nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::token::{KeyRing, SigningKey, TokenError};

/// Fixed secrets, so that a crash reproduces (and seeds can hold genuine tokens).
fn key(id: u8) -> SigningKey {
    SigningKey {
        id,
        secret: [id.wrapping_mul(37) ^ 0x5a; 32],
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(14));
    let mut h = [0u8; 14];
    h[..head.len()].copy_from_slice(head);
    let text = String::from_utf8_lossy(rest);

    // 1. Arbitrary text as a token, against the ring of key 1 that the seeds' tokens come from.
    let ring = KeyRing::new(&[key(1)]).unwrap();
    let open = ring.verify_open(&text);
    let stop = ring.verify_stop(&text);
    let click = ring.verify_click(&text);
    if let Ok(t) = open {
        assert_eq!(
            ring.sign_open(t.tracking_id),
            text,
            "a verified token is canonical"
        );
        assert_eq!(ring.claimed_tracking_id(&text, false), Some(t.tracking_id));
        assert!(stop.is_err(), "an open token is not a stop token");
    }
    if let Ok(t) = stop {
        assert_eq!(ring.sign_stop(t.tracking_id), text);
    }
    if let Ok(t) = click {
        assert_eq!(ring.sign_click(t.tracking_id, t.link_no), text);
        assert_eq!(ring.claimed_tracking_id(&text, true), Some(t.tracking_id));
    }
    let _ = ring.claimed_tracking_id(&text, false);
    let _ = ring.claimed_tracking_id(&text, true);
    // The same text as a `--signing-key ID:SECRET`: what parses prints back as itself.
    if let Ok(k) = SigningKey::parse(&text) {
        let again = SigningKey::parse(&k.to_spec()).unwrap();
        assert_eq!((again.id, again.secret), (k.id, k.secret));
        assert!(k.id > 0);
    }

    // 2. Round trip: a ring of one or two keys signs for (tracking id, link).
    let (old_id, new_id) = (h[0].max(1), h[1].max(1));
    let tracking_id = i64::from_be_bytes(h[2..10].try_into().unwrap());
    let link_no = u16::from_be_bytes([h[10], h[11]]);
    let old = KeyRing::new(&[key(old_id)]).unwrap();
    let ring = if new_id == old_id {
        old.clone()
    } else {
        KeyRing::new(&[key(old_id), key(new_id)]).unwrap()
    };
    for signer in [&old, &ring] {
        let (o, s, c) = (
            signer.sign_open(tracking_id),
            signer.sign_stop(tracking_id),
            signer.sign_click(tracking_id, link_no),
        );
        assert_eq!(ring.verify_open(&o).unwrap().tracking_id, tracking_id);
        assert_eq!(ring.verify_stop(&s).unwrap().tracking_id, tracking_id);
        let v = ring.verify_click(&c).unwrap();
        assert_eq!((v.tracking_id, v.link_no), (tracking_id, link_no));
        // Kinds are not interchangeable.
        assert_eq!(ring.verify_open(&s), Err(TokenError::BadSignature));
        assert_eq!(ring.verify_stop(&o), Err(TokenError::BadSignature));
        assert_eq!(ring.verify_click(&o), Err(TokenError::Malformed));
        assert!(ring.verify_open(&c).is_err());
        // One altered character is always refused.
        let pos = usize::from(h[12]) % c.len();
        let ch = ALPHABET[usize::from(h[13]) % 64];
        let mut altered = c.clone().into_bytes();
        if altered[pos] != ch {
            altered[pos] = ch;
            let altered = String::from_utf8(altered).unwrap();
            assert!(ring.verify_click(&altered).is_err(), "accepted {altered}");
        }
    }
});
