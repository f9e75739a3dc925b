//! How old the browser a user agent names is: the first release date of its major version, from
//! caniuse's release data (`data/user-agents/browser-releases.csv`, source and licence in its
//! header). Browsers update themselves, so a request naming a version released long before it
//! arrived is a script with a copied user agent, not a person (the `ua:outdated-browser` rule).

use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

const RELEASES: &str = include_str!("../../data/user-agents/browser-releases.csv");

/// browser -> major version -> first release.
static TABLE: LazyLock<HashMap<&'static str, BTreeMap<u32, NaiveDate>>> = LazyLock::new(|| {
    let mut table: HashMap<&str, BTreeMap<u32, NaiveDate>> = HashMap::new();
    for l in RELEASES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut f = l.split(',');
        let (Some(browser), Some(major), Some(date)) = (f.next(), f.next(), f.next()) else {
            panic!("browser-releases.csv: bad line {l:?}");
        };
        let major: u32 = major.parse().expect("browser-releases.csv: major");
        let date = date.parse().expect("browser-releases.csv: date");
        table.entry(browser).or_default().insert(major, date);
    }
    table
});

/// Tokens of mail clients whose user agents carry an old engine's name: Outlook's `MSIE 7.0`
/// compatibility token, Windows Live Mail's, and the desktop clients built on an embedded Chromium
/// that does not update itself (Mailbird's Chrome 51, NetEase MailMaster's Chrome 49; their agents
/// in device-detector's mail-client fixtures, tests/corpus/sources/mail-providers.md): people,
/// however old the engine.
const MAIL_CLIENT_TOKENS: &[&str] = &[
    "outlook",
    "msoffice",
    "ms-office",
    "microsoft office",
    "thunderbird",
    "windows live mail",
    "lotus-notes",
    "mailbird",
    "mailmaster",
    "foxmail",
    "web.de",
    "airmail",
    "mailspring",
    "bluemail",
    "em client",
    "postbox",
];

/// [`MAIL_CLIENT_TOKENS`], any of them, in any case.
static MAIL_CLIENT: LazyLock<regex::Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = MAIL_CLIENT_TOKENS
        .iter()
        .map(|t| regex::escape(t))
        .collect();
    regex::RegexBuilder::new(&alternatives.join("|"))
        .case_insensitive(true)
        .build()
        .expect("mail client tokens")
});

/// The browser and major version a user agent names, in caniuse's names; `None` for mail clients,
/// apps and anything that names no browser version.
pub fn browser_version(ua: &str) -> Option<(&'static str, u32)> {
    if MAIL_CLIENT.is_match(ua) {
        return None;
    }
    // EdgeHTML's agent names Chrome 42 as well: its own token decides.
    if let Some(v) = major_after(ua, "Edge/") {
        return Some(("edge", v));
    }
    if let Some(v) = major_after(ua, "Chrome/") {
        return Some(("chrome", v));
    }
    if let Some(v) = major_after(ua, "Firefox/") {
        return Some(("firefox", v));
    }
    if let Some(v) = major_after(ua, "MSIE ") {
        return Some(("ie", v));
    }
    if ua.contains("Trident/7.0") && ua.contains("rv:11.0") {
        return Some(("ie", 11));
    }
    if ua.starts_with("Opera/") {
        return major_after(ua, "Version/")
            .or_else(|| major_after(ua, "Opera/"))
            .map(|v| ("opera", v));
    }
    if ua.contains("Safari/") {
        let mobile = ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod");
        let browser = if mobile { "ios_saf" } else { "safari" };
        return major_after(ua, "Version/").map(|v| (browser, v));
    }
    None
}

/// When a browser's major version first came out: a version the table skips (no Chrome 82 was
/// released) counts from the one before it; one newer than the table is `None`.
pub fn release_of(browser: &str, major: u32) -> Option<NaiveDate> {
    let versions = TABLE.get(browser)?;
    if versions
        .keys()
        .next_back()
        .is_none_or(|newest| major > *newest)
    {
        return None;
    }
    versions.range(..=major).next_back().map(|(_, date)| *date)
}

fn major_after(ua: &str, token: &str) -> Option<u32> {
    let at = ua.find(token)? + token.len();
    let digits: &str = &ua[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(ua: &str) -> Option<NaiveDate> {
        let (browser, major) = browser_version(ua)?;
        release_of(browser, major)
    }

    #[test]
    fn the_browser_and_version_an_agent_names() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                Some(("chrome", 131)),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246",
                Some(("edge", 12)),
            ),
            (
                "Mozilla/5.0 (Windows NT 6.1; rv:47.0) Gecko/20100101 Firefox/47.0",
                Some(("firefox", 47)),
            ),
            (
                "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
                Some(("ie", 6)),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
                Some(("ie", 11)),
            ),
            (
                "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.16",
                Some(("opera", 12)),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
                Some(("ios_saf", 12)),
            ),
            // Outlook's compatibility token and Apple Mail's agent name no browser version.
            (
                "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; Microsoft Outlook 16.0.4266; ms-office; MSOffice 16)",
                None,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
                None,
            ),
        ];
        for (ua, want) in cases {
            assert_eq!(browser_version(ua), want, "{ua}");
        }
    }

    #[test]
    fn release_dates_come_from_the_table() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            released("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"),
            Some(day("2001-08-27"))
        );
        assert_eq!(
            released(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.87 Safari/537.36"
            ),
            Some(day("2016-03-03"))
        );
        // A version newer than the table is not old.
        assert_eq!(released("Mozilla/5.0 Chrome/999.0 Safari/537.36"), None);
    }
}
