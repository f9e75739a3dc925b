//! How much of a message is tracked, and what happens without consent.

use serde::{Deserialize, Serialize};

/// `--without-consent`: a hit on mail to a recipient whose consent does not stand (withdrawn, or
/// never given for mail registered before `--require-consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum WithoutConsent {
    /// The message is made anonymous (renamed to a random name, its events' addresses and agent
    /// strings removed) and the hit is recorded on it: counted, pointing to no one.
    #[default]
    Anonymous,
    /// The hit is answered and not stored, as after an opt-out.
    None,
}

/// How much of a message is tracked. Ordered: a setting caps a request at its level.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TrackingLevel {
    /// Not instrumented: no pixel, no rewritten links, nothing stored.
    None,
    /// Counted in the campaign's figures; the stored message names no recipient.
    Anonymous,
    /// Per-recipient events (the default).
    Individual,
}
