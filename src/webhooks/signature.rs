//! Standard Webhooks signatures (https://www.standardwebhooks.com): the secret is `whsec_` followed
//! by the base64 of the key; each request carries `webhook-id`, `webhook-timestamp` (Unix seconds)
//! and `webhook-signature: v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, so
//! receivers can check it with the scheme's libraries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

pub fn format_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a secret, checked: 24 to 64 bytes, as the scheme advises.
pub fn parse_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| format!("a webhook secret starts with {SECRET_PREFIX}"))?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| format!("a webhook secret is {SECRET_PREFIX} followed by base64"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!(
            "a webhook secret's key is 24 to 64 bytes (this one has {})",
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` header value.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its test vector).
    #[test]
    fn signs_the_specification_example() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked() {
        let secret = format_secret(&[7u8; 32]);
        assert_eq!(parse_secret(&secret).unwrap(), vec![7u8; 32]);
        assert!(parse_secret("nope").unwrap_err().contains("whsec_"));
        assert!(parse_secret("whsec_!!!").unwrap_err().contains("base64"));
        assert!(parse_secret("whsec_AAAA").unwrap_err().contains("24 to 64"));
    }
}
