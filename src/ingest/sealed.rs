//! User agents in the journal with `--user-agent parsed`: the store worker needs the string to
//! classify the hit, the policy says it must not be kept. It is written sealed (ChaCha20-Poly1305)
//! with a key made at start and held only in this process's memory: what reaches the disk cannot
//! be read by anyone, and once the process ends (a restart, a crash) not even by mailbeacon. Hits
//! still in the journal then are stored without their agent (classified from the rest).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Sealer {
    key: LessSafeKey,
    /// Nonces are a counter: the key is new in every process, so none repeats under it.
    next: AtomicU64,
}

static SEALER: LazyLock<Sealer> = LazyLock::new(|| {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source failed");
    Sealer {
        key: LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 32-byte key")),
        next: AtomicU64::new(0),
    }
});

/// `text` sealed under this process's key: nonce and ciphertext, base64.
pub fn seal(text: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&SEALER.next.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let mut sealed = text.as_bytes().to_vec();
    SEALER
        .key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut sealed,
        )
        .expect("sealing a short string");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// What [`seal`] sealed in this process; `None` for anything else (another process's key).
pub fn open(sealed: &str) -> Option<String> {
    let mut bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
    let plain = SEALER
        .key
        .open_in_place(nonce, Aad::empty(), &mut bytes[NONCE_LEN..])
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_here_only() {
        let agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0";
        let (a, b) = (seal(agent), seal(agent));
        assert_ne!(a, b, "a nonce per seal");
        assert!(!a.contains("Chrome"));
        assert_eq!(open(&a).as_deref(), Some(agent));
        let mut forged = URL_SAFE_NO_PAD.decode(&a).unwrap();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(open(&URL_SAFE_NO_PAD.encode(forged)), None);
        assert_eq!(open("not sealed"), None);
    }
}
