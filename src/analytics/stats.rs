//! A campaign's stored counts, as the store reads them from its rollups.

use crate::domain::CampaignId;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub total: i64,
    pub unique: i64,
    /// Events that are not machine activity.
    pub total_excluding_machine: i64,
    /// Messages with at least one event of this kind that is not machine activity (Apple's
    /// prefetch, scanners, bots). For opens: messages whose pixel a reader loaded (click-implied
    /// opens are in [`CampaignStats::opened_by_readers`]), so unique never exceeds total.
    pub unique_excluding_machine: i64,
}

/// Events of one class.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ClassCounts {
    pub opens: i64,
    pub clicks: i64,
}

/// Conversions reported back by the sender's site (`POST /conversions`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConversionCounts {
    pub total: i64,
    /// Messages with at least one conversion.
    pub unique: i64,
    /// Summed per currency, most first.
    pub value: Vec<ConversionValue>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConversionValue {
    pub currency: String,
    pub value: f64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CampaignStats {
    pub campaign_id: CampaignId,
    pub sent: i64,
    pub opens: Counts,
    pub clicks: Counts,
    pub first_activity: Option<DateTime<Utc>>,
    pub last_activity: Option<DateTime<Utc>>,
    /// Messages opened in the widest sense: pixel fetched or a link clicked, by anyone or anything
    /// (the open rate's ceiling; a click implies an open, as most email platforms count it).
    pub opened: i64,
    /// Messages a reader opened: pixel loaded by a reader, or a link clicked by one (the open
    /// rate's floor). Never more than `opened`.
    pub opened_by_readers: i64,
    /// Messages a reader clicked although no reader's pixel load was recorded (images blocked):
    /// `opened_by_readers` minus `opens.unique_excluding_machine`.
    pub click_implied_opens: i64,
    /// Every class, including those with no events, in a fixed order.
    pub by_class: std::collections::BTreeMap<&'static str, ClassCounts>,
    pub conversions: ConversionCounts,
}
