//! Deliverability by mailbox provider: readers' open and click rates per provider of the
//! recipients' addresses (when the recipient id is an address). A provider whose readers open far
//! less than the others' often means the mail went to its spam folder.

use super::segments::{MessageActivity, Segment};
use serde::Serialize;
use std::collections::BTreeMap;

/// Domains with fewer messages than this in a campaign are counted under `other`: a row per small
/// company domain would say who got the mail.
pub const MIN_DOMAIN_MESSAGES: u64 = 5;

/// The large providers, by the domains their users' addresses have.
const PROVIDERS: &[(&str, &[&str])] = &[
    ("Gmail", &["gmail.com", "googlemail.com"]),
    (
        "Outlook/Hotmail",
        &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "outlook.de",
            "hotmail.de",
            "hotmail.co.uk",
            "hotmail.fr",
            "live.de",
        ],
    ),
    (
        "Yahoo/AOL",
        &[
            "yahoo.com",
            "ymail.com",
            "aol.com",
            "yahoo.de",
            "yahoo.co.uk",
            "yahoo.fr",
            "aim.com",
        ],
    ),
    ("iCloud", &["icloud.com", "me.com", "mac.com"]),
    (
        "GMX/web.de",
        &["gmx.de", "gmx.net", "gmx.com", "gmx.at", "gmx.ch", "web.de"],
    ),
];

/// The provider of a recipient id that is an address: a large provider's name, else its domain;
/// `None` when the id is not an address (a CRM id, a hash).
pub fn provider(recipient_id: &str) -> Option<String> {
    let (local, domain) = recipient_id.trim().rsplit_once('@')?;
    let domain = domain.to_ascii_lowercase();
    if local.is_empty() || !domain.contains('.') || domain.starts_with('.') {
        return None;
    }
    let known = PROVIDERS
        .iter()
        .find(|(_, domains)| domains.contains(&domain.as_str()));
    Some(known.map_or(domain, |(name, _)| name.to_string()))
}

/// One of the large providers' names (as [`provider`] gives them), not a domain.
pub fn is_large(name: &str) -> bool {
    PROVIDERS.iter().any(|(n, _)| *n == name)
}

/// One provider's row of a campaign.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProviderRow {
    /// A large provider's name, a domain, `other` (small domains together) or `not an address`.
    pub provider: String,
    pub sent: u64,
    /// Messages a reader opened (or clicked), as in the segments.
    pub opened: u64,
    pub clicked: u64,
    pub open_rate: Option<f64>,
    pub click_rate: Option<f64>,
}

/// Counts a campaign's messages per provider, a page at a time.
#[derive(Debug, Default)]
pub struct ProviderTally {
    rows: BTreeMap<String, ProviderRow>,
}

impl ProviderTally {
    /// Adds a message; untracked (anonymous) mail names no address and is left out.
    pub fn add(&mut self, m: &MessageActivity) {
        if m.segment() == Segment::Untracked {
            return;
        }
        let name = provider(&m.recipient_id).unwrap_or_else(|| "not an address".into());
        let row = self.rows.entry(name).or_default();
        row.sent += 1;
        row.opened += u64::from(m.is_in(Segment::Opened));
        row.clicked += u64::from(m.is_in(Segment::Clicked));
    }

    /// The rows, most messages first; domains with fewer than [`MIN_DOMAIN_MESSAGES`] merged
    /// into `other`.
    pub fn rows(self) -> Vec<ProviderRow> {
        let named = |p: &str| is_large(p) || p == "not an address";
        let mut other = ProviderRow {
            provider: "other".into(),
            ..ProviderRow::default()
        };
        let mut rows: Vec<ProviderRow> = Vec::new();
        for (name, row) in self.rows {
            if named(&name) || row.sent >= MIN_DOMAIN_MESSAGES {
                rows.push(ProviderRow {
                    provider: name,
                    ..row
                });
            } else {
                other.sent += row.sent;
                other.opened += row.opened;
                other.clicked += row.clicked;
            }
        }
        if other.sent > 0 {
            rows.push(other);
        }
        for row in &mut rows {
            let rate = |n: u64| (row.sent > 0).then(|| n as f64 / row.sent as f64);
            (row.open_rate, row.click_rate) = (rate(row.opened), rate(row.clicked));
        }
        rows.sort_by(|a, b| {
            b.sent
                .cmp(&a.sent)
                .then_with(|| a.provider.cmp(&b.provider))
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageId;
    use chrono::DateTime;

    #[test]
    fn addresses_name_their_provider_and_other_ids_none() {
        assert_eq!(provider("Ann@GMAIL.com").as_deref(), Some("Gmail"));
        assert_eq!(provider("bo@web.de").as_deref(), Some("GMX/web.de"));
        assert_eq!(
            provider("x@hotmail.co.uk").as_deref(),
            Some("Outlook/Hotmail")
        );
        assert_eq!(provider("cy@shop.example").as_deref(), Some("shop.example"));
        for not_an_address in ["crm-4711", "@gmail.com", "a@localhost", "sha256:abc"] {
            assert_eq!(provider(not_an_address), None, "{not_an_address}");
        }
    }

    #[test]
    fn small_domains_are_counted_together_and_rates_follow() {
        let message = |recipient: &str, read: bool| MessageActivity {
            message_id: MessageId(1),
            recipient_id: recipient.into(),
            first_read_at: read.then_some(DateTime::UNIX_EPOCH),
            last_event_at: read.then_some(DateTime::UNIX_EPOCH),
            ..MessageActivity::default()
        };
        let mut tally = ProviderTally::default();
        for i in 0..4 {
            tally.add(&message(&format!("g{i}@gmail.com"), i < 3));
        }
        tally.add(&message("solo@tiny.example", true));
        tally.add(&message("anonymous:1f", true));
        let rows = tally.rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            (rows[0].provider.as_str(), rows[0].sent, rows[0].opened),
            ("Gmail", 4, 3)
        );
        assert_eq!(rows[0].open_rate, Some(0.75));
        assert_eq!((rows[1].provider.as_str(), rows[1].sent), ("other", 1));
    }
}
