//! The TOML config file (`--config`), and the setting values that parse from text (database URL,
//! public URL): what parses resolves to settings and prints (with any password redacted) without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::config::{DatabaseUrl, PublicUrl, Settings};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = Settings::from_toml(&text) {
        let _ = format!("{file:?}");
        let resolved = Settings::default().or_file(file).resolve();
        let _ = format!("{resolved:?}");
        assert!(resolved.api_rate_limit >= 1);
    }
    if let Ok(url) = text.parse::<DatabaseUrl>() {
        let _ = url.to_string();
    }
    if let Ok(url) = text.parse::<PublicUrl>() {
        let s = url.as_str();
        let lower = s.to_ascii_lowercase();
        assert!(lower.starts_with("http://") || lower.starts_with("https://"));
        assert!(!s.ends_with('/') && !s.contains(['?', '#']));
    }
});
