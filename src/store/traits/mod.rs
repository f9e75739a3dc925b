//! The storage traits, one per aggregate; [`super::Store`] is all of them.

mod access;
mod campaigns;
mod certificates;
mod conversions;
mod deliverability;
mod ingest;
mod maintenance;
mod outbox;
mod recipients;
mod reports;
mod tracking_domains;

pub use access::Access;
pub use campaigns::Campaigns;
pub use certificates::Certificates;
pub use conversions::{
    ConversionOutcome, ConversionRecord, Conversions, MAX_CONVERSIONS_PER_MESSAGE, NewConversion,
};
pub use deliverability::{Deliverability, ProviderHistoryRow};
pub use ingest::Ingest;
pub use maintenance::Maintenance;
pub use outbox::Outbox;
pub use recipients::Recipients;
pub use reports::Reports;
pub use tracking_domains::{DomainRemoval, TrackingDomains};
