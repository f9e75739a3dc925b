//! The words every part of mailbeacon shares: ids, what kind of event and who made it, how much
//! is tracked, scopes, the public URL, what the audit log records. Nothing here imports the rest
//! of the crate, so anything may import it.

mod audit;
mod campaign;
mod conversion;
mod events;
mod ids;
mod public_url;
mod scope;
mod tracking;
mod tracking_domain;

pub use audit::{Actor, AuditAction};
pub use campaign::*;
pub use conversion::{REFERENCE_PARAM, Utm, parse_goal, parse_value, with_reference};
pub use events::{Class, EventKind};
pub use ids::*;
pub use public_url::PublicUrl;
pub use scope::Scope;
pub use tracking::{Keep, Standing, TrackingLevel, WithoutConsent};
pub use tracking_domain::{DOMAIN_CHECK_PATH, DomainUrl, host_name, parse_tracking_domain};
