//! What a user agent says: client and OS (uap-core's regexes) and the device type, whether it is a known
//! crawler (the crawler-user-agents list), and our own list of email image proxies and security
//! scanners (`data/user-agents/mail-machines.tsv`, each row with its evidence).

use super::{Class, ClientInfo, DeviceType};
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// uap-core's regexes.yaml, converted to JSON so that no YAML parser is needed
/// (`python3 data/user-agents/convert.py` redoes it from a newer regexes.yaml).
const UAP_REGEXES: &str = include_str!("../../data/user-agents/regexes.json");
const CRAWLERS: &str = include_str!("../../data/user-agents/crawlers.txt");
const MAIL_MACHINES: &str = include_str!("../../data/user-agents/mail-machines.tsv");

/// One row of mail-machines.tsv.
struct MailMachine {
    class: Class,
    reason: &'static str,
    pattern: Regex,
}

/// uap-core's client and OS parsers. Its ~630 device parsers (brand and model names) are left out:
/// they took about half of the memory (the device type comes from the OS and a few tokens).
struct Uap {
    ua: ua_parser::user_agent::Extractor<'static>,
    os: ua_parser::os::Extractor<'static>,
}

impl Uap {
    fn build() -> Uap {
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(UAP_REGEXES).expect("data/user-agents/regexes.json");
        let ua = regexes
            .user_agent_parsers
            .into_iter()
            .try_fold(ua_parser::user_agent::Builder::new(), |b, p| b.push(p))
            .and_then(|b| b.build().map_err(Into::into))
            .expect("uap-core client regexes compile");
        let os = regexes
            .os_parsers
            .into_iter()
            .try_fold(ua_parser::os::Builder::new(), |b, p| b.push(p))
            .expect("uap-core OS regexes parse")
            .build()
            .expect("uap-core OS regexes compile");
        Uap { ua, os }
    }
}

/// What uap-core says about one user agent: client family, OS family.
type Parsed = (Option<String>, Option<String>);

/// Parsed user agents kept; real traffic repeats a few hundred agents, and parsing one costs
/// about 7 µs against well under 1 µs for a lookup.
const PARSE_CACHE_SIZE: usize = 4096;

pub struct Agents {
    uap: LazyLock<Uap>,
    parsed: Mutex<HashMap<Box<str>, Parsed>>,
    crawlers: Regex,
    mail_machines: Vec<MailMachine>,
}

impl Agents {
    pub fn builtin() -> Agents {
        Agents {
            uap: LazyLock::new(Uap::build),
            parsed: Mutex::new(HashMap::with_capacity(PARSE_CACHE_SIZE)),
            crawlers: crawler_regex(CRAWLERS),
            mail_machines: mail_machines(MAIL_MACHINES),
        }
    }

    /// Builds the lazily compiled parts now (at start-up rather than on the first request).
    pub fn warm_up(&self) {
        LazyLock::force(&self.uap);
    }

    /// An email image proxy or security scanner named in mail-machines.tsv.
    pub fn mail_machine(&self, ua: &str) -> Option<(Class, &'static str)> {
        self.mail_machines
            .iter()
            .find(|m| m.pattern.is_match(ua))
            .map(|m| (m.class, m.reason))
    }

    /// A crawler, script or monitoring agent from the crawler-user-agents list.
    pub fn is_crawler(&self, ua: &str) -> bool {
        self.crawlers.is_match(ua)
    }

    pub fn client_info(&self, ua: Option<&str>, class: Class) -> ClientInfo {
        let Some(ua) = ua.filter(|u| !u.is_empty()) else {
            return ClientInfo::default();
        };
        let (client, os) = self.parse(ua);
        let device = match class {
            Class::AppleMpp
            | Class::GmailProxy
            | Class::YahooProxy
            | Class::MicrosoftProxy
            | Class::OtherProxy => DeviceType::Proxy,
            _ => device_type(os.as_deref(), ua),
        };
        ClientInfo { client, os, device }
    }
}

impl Agents {
    fn parse(&self, ua: &str) -> Parsed {
        let mut cache = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.get(ua) {
            return hit.clone();
        }
        let parsed = (
            self.uap
                .ua
                .extract(ua)
                .map(|c| c.family.into_owned())
                .filter(|f| f != "Other"),
            self.uap
                .os
                .extract(ua)
                .map(|o| o.os.into_owned())
                .filter(|f| f != "Other"),
        );
        if cache.len() >= PARSE_CACHE_SIZE {
            // Crude but bounded: start over rather than track recency.
            cache.clear();
        }
        cache.insert(ua.into(), parsed.clone());
        parsed
    }
}

fn device_type(os: Option<&str>, ua: &str) -> DeviceType {
    if ["iPad", "Tablet", "Kindle", "Silk/", "PlayBook"]
        .iter()
        .any(|t| ua.contains(t))
    {
        return DeviceType::Tablet;
    }
    match os {
        // Android phones say "Mobile"; Android tablets do not.
        Some("Android") if !ua.contains("Mobile") => DeviceType::Tablet,
        Some("iOS" | "Android" | "Windows Phone" | "BlackBerry OS" | "KaiOS") => DeviceType::Mobile,
        Some(
            "Windows" | "Mac OS X" | "Linux" | "Ubuntu" | "Fedora" | "Chrome OS" | "FreeBSD"
            | "OpenBSD",
        ) => DeviceType::Desktop,
        _ => DeviceType::Unknown,
    }
}

fn data_lines(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

fn crawler_regex(text: &'static str) -> Regex {
    // One alternation: the lazy DFA answers in one pass instead of ~1,500 separate matches.
    let patterns: Vec<&str> = data_lines(text).collect();
    RegexBuilder::new(&patterns.join("|"))
        .size_limit(64 << 20)
        .build()
        .expect("data/user-agents/crawlers.txt compiles")
}

fn mail_machines(text: &'static str) -> Vec<MailMachine> {
    data_lines(text)
        .filter(|l| !l.starts_with("class\t"))
        .map(|line| {
            let cols: Vec<&'static str> = line.split('\t').collect();
            let [class, reason, pattern, ..] = cols[..] else {
                panic!("mail-machines.tsv: expected class, reason, pattern, evidence: {line:?}");
            };
            MailMachine {
                class: Class::parse(class)
                    .unwrap_or_else(|| panic!("mail-machines.tsv: unknown class {class:?}")),
                reason,
                pattern: RegexBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .unwrap_or_else(|e| panic!("mail-machines.tsv: {pattern:?}: {e}")),
            }
        })
        .collect()
}
