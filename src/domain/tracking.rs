//! How much of a message is tracked, what happens without consent, and what of a hit is kept
//! given where its recipient stands.

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

/// Where a message's recipient stands, as far as keeping their hits goes: the tracker reads it
/// before it journals a hit, the store worker before it stores one, and both keep what
/// [`Standing::keep`] says (PRIVACY.md, "the journal").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// Stored under an anonymous name: nothing of the reader is kept.
    pub anonymous: bool,
    /// The recipient opted out: hits are answered and not stored.
    pub opted_out: bool,
    /// The recipient's consent stands (it matters with `--require-consent`).
    pub consenting: bool,
}

/// What of a hit is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The hit as the settings keep any.
    Everything,
    /// Counted on a message that points to no one: no address, place, agent string or headers.
    Anonymous,
    /// Answered, not stored.
    Nothing,
}

impl Standing {
    /// What of a hit on this recipient's mail is kept; `without_consent` is `Some` under
    /// `--require-consent`. Mail registered anonymous names no one, so consent does not apply.
    pub fn keep(self, without_consent: Option<WithoutConsent>) -> Keep {
        let lacking = without_consent.filter(|_| !self.anonymous && !self.consenting);
        match (self.opted_out, lacking) {
            (true, _) | (false, Some(WithoutConsent::None)) => Keep::Nothing,
            (false, Some(WithoutConsent::Anonymous)) => Keep::Anonymous,
            (false, None) if self.anonymous => Keep::Anonymous,
            (false, None) => Keep::Everything,
        }
    }

    /// Whether a conversion of this recipient's mail is kept, and so whether a click carries a
    /// reference at all: as the click is, except that a message that still names its recipient
    /// is not converted into an anonymous one for a conversion (the store worker renames it at
    /// its next hit).
    pub fn keeps_conversions(self, without_consent: Option<WithoutConsent>) -> bool {
        match self.keep(without_consent) {
            Keep::Everything => true,
            Keep::Anonymous => self.anonymous,
            Keep::Nothing => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: Option<WithoutConsent> = Some(WithoutConsent::Anonymous);
    const REQUIRED_OR_NOTHING: Option<WithoutConsent> = Some(WithoutConsent::None);

    fn standing(anonymous: bool, opted_out: bool, consenting: bool) -> Standing {
        Standing {
            anonymous,
            opted_out,
            consenting,
        }
    }

    #[test]
    fn an_opt_out_keeps_nothing_whatever_the_consent() {
        for without in [None, REQUIRED, REQUIRED_OR_NOTHING] {
            assert_eq!(standing(false, true, true).keep(without), Keep::Nothing);
        }
    }

    #[test]
    fn without_standing_consent_the_setting_decides() {
        let lacking = standing(false, false, false);
        assert_eq!(lacking.keep(None), Keep::Everything);
        assert_eq!(lacking.keep(REQUIRED), Keep::Anonymous);
        assert_eq!(lacking.keep(REQUIRED_OR_NOTHING), Keep::Nothing);
        let consenting = standing(false, false, true);
        assert_eq!(consenting.keep(REQUIRED_OR_NOTHING), Keep::Everything);
    }

    #[test]
    fn conversions_are_kept_as_clicks_are_and_never_rename_a_message() {
        assert!(standing(false, false, true).keeps_conversions(REQUIRED));
        assert!(standing(true, false, false).keeps_conversions(REQUIRED_OR_NOTHING));
        assert!(!standing(false, false, false).keeps_conversions(REQUIRED));
        assert!(!standing(false, true, true).keeps_conversions(None));
    }

    #[test]
    fn anonymous_mail_is_kept_anonymous_and_needs_no_consent() {
        let anonymous = standing(true, false, false);
        for without in [None, REQUIRED, REQUIRED_OR_NOTHING] {
            assert_eq!(anonymous.keep(without), Keep::Anonymous);
        }
    }
}
