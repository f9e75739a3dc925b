//! The records the storage interface takes and gives: campaigns, messages, events as the tracker
//! hands them in and as reports and exports read them, privacy records, summaries.

use super::{CampaignId, EventId, MessageId};
use crate::domain::{Actor, AuditAction, EventKind, Scope, WithoutConsent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_html: Option<String>,
    pub subject: Option<String>,
    /// When the mail went out: as given, else the send time of the first message registered.
    pub sent_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    /// Archived campaigns are left out of the list unless asked for; their tracking still works.
    pub archived_at: Option<DateTime<Utc>>,
    /// UTM parameters added to its tracked destinations as its mail is registered.
    pub utm: Option<crate::domain::Utm>,
    /// Its clicks carry a signed reference to their destination, for conversions.
    pub conversions: bool,
    /// The tracking domain its mail's links use; `None`: the public URL.
    pub tracking_domain: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A campaign as it is made; the texts already checked (`crate::domain::parse_*`).
#[derive(Debug, Clone, Default)]
pub struct NewCampaign {
    pub name: String,
    pub template_html: Option<String>,
    pub subject: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    pub utm: Option<crate::domain::Utm>,
    pub conversions: bool,
    /// A tracking domain known and not retired (checked by the caller).
    pub tracking_domain: Option<String>,
}

impl NewCampaign {
    pub fn named(name: &str) -> NewCampaign {
        NewCampaign {
            name: name.to_string(),
            ..NewCampaign::default()
        }
    }
}

/// A change to a campaign: `None` leaves a field as it is; `Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct CampaignEdit {
    pub name: Option<String>,
    /// The template (checked HTML): messages registered without HTML use it; the click map shows it.
    pub template_html: Option<Option<String>>,
    pub subject: Option<Option<String>>,
    pub sent_at: Option<Option<DateTime<Utc>>>,
    pub tags: Option<Vec<String>>,
    pub archived: Option<bool>,
    pub utm: Option<Option<crate::domain::Utm>>,
    pub conversions: Option<bool>,
    pub tracking_domain: Option<Option<String>>,
}

/// A tracking domain of the sender's own, as the admin manages it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackingDomain {
    /// The host name (lower case, no port).
    pub domain: String,
    /// The base URL mail links under it use.
    pub url: String,
    pub added_at: DateTime<Utc>,
    /// Since then no new mail uses it; mail already sent keeps working.
    pub retired_at: Option<DateTime<Utc>>,
    /// When its domain check last ran.
    pub checked_at: Option<DateTime<Utc>>,
    /// When the check last found the name reaching this installation.
    pub verified_at: Option<DateTime<Utc>>,
    /// Why the last check failed, with the DNS record to create; `None` when it passed.
    pub check_error: Option<String>,
}

/// A certificate for one host name, obtained by ACME, and the state of its next order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCertificate {
    pub domain: String,
    /// The PEM chain (leaf first) and its PKCS#8 key; `None` until the first order succeeds.
    pub issued: Option<IssuedCertificate>,
    /// Failed orders in a row, and why the last one failed.
    pub failures: i64,
    pub last_error: Option<String>,
    /// No order before this (back-off after a failure).
    pub retry_at: Option<DateTime<Utc>>,
}

/// What an order brought: the certificate, its key and its validity.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedCertificate {
    pub chain_pem: String,
    pub key_pem: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Ordered again from then on (before it expires, or now when an admin asked).
    pub renew_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
}

/// A campaign in the list, with its headline figures (read from the rollups: constant cost).
#[derive(Debug, Clone, Serialize)]
pub struct ListedCampaign {
    #[serde(flatten)]
    pub campaign: Campaign,
    pub sent: i64,
    /// Messages opened by a reader, click-implied opens included (the open rate's floor).
    pub reader_opens: i64,
    pub reader_clicks: i64,
    pub reader_open_rate: Option<f64>,
    pub reader_click_rate: Option<f64>,
}

/// Which campaigns the list holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Archived {
    #[default]
    Exclude,
    Include,
    Only,
}

/// What deleting a campaign removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CampaignDeletion {
    pub messages: u64,
    pub links: u64,
    pub events: u64,
    /// Notices about its events not delivered yet, withdrawn.
    pub webhook_notices: u64,
}

/// What a tracking request learns of its message before it is answered.
#[derive(Debug, Clone)]
pub struct LinkLookup {
    pub standing: crate::domain::Standing,
    /// Where link `link_no` leads; `None` when there is no such link or none was asked for.
    pub url: Option<String>,
    /// Its campaign tracks conversions.
    pub conversions: bool,
}

/// A message about to be stored: one mail to one recipient, with its tracked links.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub recipient_id: String,
    pub tracking_id: i64,
    pub sent_at: DateTime<Utc>,
    /// Destination of link number i+1.
    pub links: Vec<String>,
    /// Where the hidden honeypot link (number 0) leads, when the message has one.
    pub honeypot: Option<String>,
}

/// A tracking request as the writer hands it to storage, already reduced by the privacy policy.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub tracking_id: i64,
    /// Set for clicks.
    pub link_no: Option<u16>,
    pub received_at: DateTime<Utc>,
    pub method: &'static str,
    pub user_agent: Option<String>,
    /// Store the user agent string (`--user-agent full`), or only what classification parsed
    /// from it (`parsed`): classification always sees it.
    pub keep_user_agent: bool,
    pub client_ip: Option<String>,
    /// A few request headers that later classification needs, as a JSON object.
    pub headers: Option<String>,
    /// The published address lists the full client address is in (before it was reduced).
    pub ip_tags: Vec<&'static str>,
    /// Not an event: a token of this message failed its signature check. Storage notes the time
    /// on the message (once) and answers [`RecordOutcome::FailedCheckNoted`].
    pub failed_check: bool,
    /// From the full address, with `--geoip`.
    pub country: Option<String>,
    pub region: Option<String>,
    /// `--require-consent`: what to do when the recipient's consent does not stand (messages
    /// registered anonymous name no recipient and are stored as they are); `None`: not required.
    pub without_consent: Option<WithoutConsent>,
}

/// What storing one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Recorded {
        event_id: EventId,
        /// The click's destination; `None` for opens.
        destination: Option<String>,
    },
    /// The token was genuine but its message is gone (erased) or was never stored here.
    UnknownMessage,
    /// The message exists but has no link with that number.
    UnknownLink,
    /// A failed check was noted (see [`NewEvent::failed_check`]).
    FailedCheckNoted,
    /// The recipient opted out (or their consent does not stand): nothing was stored.
    NotStored { destination: Option<String> },
}

/// One stored event as the API and exports show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventRecord {
    pub id: EventId,
    pub kind: EventKind,
    pub received_at: DateTime<Utc>,
    pub campaign_id: CampaignId,
    pub message_id: MessageId,
    pub recipient_id: String,
    pub link_url: Option<String>,
    pub method: String,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub class: String,
    /// Reason codes, space separated.
    pub reasons: String,
    pub duplicate: bool,
    pub internal: bool,
    pub client: Option<String>,
    pub os: Option<String>,
    pub device: String,
    /// ISO country code, with `--geoip`.
    pub country: Option<String>,
    /// ISO subdivision code, with `--geoip`.
    pub region: Option<String>,
}

/// One line of the audit log: who did what to which data.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// The actor's scope (`admin`, `analyst`, `viewer`; `link` for a recipient's stop link).
    pub scope: String,
    pub action: AuditAction,
    /// What it was done to: a recipient id, a campaign, or `all`.
    pub target: String,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Erasure {
    pub messages: u64,
    pub links: u64,
    pub events: u64,
    pub opt_outs: u64,
    /// Webhook notices about the recipient that were not sent yet, withdrawn.
    pub webhook_notices: u64,
    /// Consent records (see [`ConsentRecord`]).
    pub consents: u64,
}

/// A recipient's consent to individual tracking, kept as proof.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentRecord {
    pub id: i64,
    pub recipient_id: String,
    pub given_at: DateTime<Utc>,
    /// How it was given: a form, a preference centre, an import...
    pub source: String,
    /// The wording agreed to, or a reference to it.
    pub text: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientMessage {
    pub message_id: MessageId,
    pub campaign_id: CampaignId,
    pub campaign_name: String,
    pub sent_at: DateTime<Utc>,
    /// Destinations of the message's tracked links, in order.
    pub links: Vec<String>,
}

/// Everything stored about one recipient.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientExport {
    pub recipient_id: String,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub consents: Vec<ConsentRecord>,
    pub messages: Vec<RecipientMessage>,
    pub events: Vec<EventRecord>,
}

/// An imported address list (see `mailbeacon ranges import`).
#[derive(Debug, Clone, Serialize)]
pub struct AddressList {
    pub list: String,
    /// Where it came from: the file name, or what the user said.
    pub source: String,
    pub format: String,
    pub imported_at: DateTime<Utc>,
    /// One CIDR per line.
    #[serde(skip)]
    pub cidrs: String,
}

/// Called with (done, total) during long operations.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RollupCheck {
    pub campaigns_checked: u64,
    /// Campaigns with events deleted by retention, not checked.
    pub campaigns_skipped: Vec<CampaignId>,
    /// Campaigns whose rollups differ from the event log, with the first differing rows.
    pub differences: Vec<(CampaignId, Vec<String>)>,
    /// Messages whose history summary (`messages.history`) was compared with their events.
    pub summaries_checked: u64,
    /// Those whose summary disagrees with their events (a repair clears it: the next hit rebuilds
    /// it from the log).
    pub summaries_wrong: Vec<MessageId>,
    pub repaired: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PurgeSummary {
    pub events: u64,
    pub messages: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ReclassifySummary {
    pub events: u64,
    pub changed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub campaign: Option<CampaignId>,
    /// Only events with an id greater than this.
    pub after: EventId,
    pub limit: usize,
}

/// An API token as `token list` shows it (never the token itself: only its hash is kept).
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}
