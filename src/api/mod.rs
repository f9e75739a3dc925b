//! The JSON API under `/api`. Every route but the OpenAPI document needs
//! `Authorization: Bearer TOKEN`.
//!
//! The routes are made from the OpenAPI document (`openapi.json`): each operation's
//! `operationId` names its handler in [`handler`]. So the document lists every route there is —
//! a handler it does not name is not reachable — and tests can walk it (the scope test does).

pub mod auth;
mod campaigns;
mod conversions;
mod deliverability;
mod engagement;
pub use crate::encode::csv_safe;
pub use crate::error;
mod events;
mod exports;
pub use crate::encode::format;
pub(crate) mod json_body;
mod messages;
pub use crate::limits::rate_limit;
mod recipients;
pub mod reports;
mod segments;
mod send_times;
mod tracking_domains;
pub mod webhooks;

pub use crate::app::existing_campaign;
pub use crate::domain::recipient_ref;
pub use crate::encode::{csv_rows, to_csv, to_ndjson};

/// Request parsers of private modules, reachable for the fuzz targets in `fuzz/`.
#[doc(hidden)]
pub mod parsers {
    pub use super::events::EventsParams;
    pub use super::exports::ExportParams;
    pub use super::messages::parse_messages;
    pub use super::recipients::AuditParams;
}

use crate::app::AppState;
use axum::Router;
use axum::http::header;
use axum::routing::{MethodRouter, delete, get, patch, post};
use std::sync::Arc;

/// The OpenAPI 3.1 document, served at `/api/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The method and handler of one operation.
fn handler(operation_id: &str) -> Option<(&'static str, MethodRouter<Arc<AppState>>)> {
    Some(match operation_id {
        "getOpenApi" => (
            "GET",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        ),
        "createCampaign" => ("POST", post(campaigns::create)),
        "listCampaigns" => ("GET", get(campaigns::list)),
        "registerMessages" => ("POST", post(messages::create)),
        "getCampaignReport" | "getCampaignStats" => ("GET", get(reports::headline)),
        "getCampaignTimeseries" => ("GET", get(reports::timeseries)),
        "getCampaignLinks" => ("GET", get(reports::links)),
        "getCampaignBreakdown" => ("GET", get(reports::breakdown)),
        "getCampaignHourOfWeek" => ("GET", get(reports::hour_of_week)),
        "compareCampaigns" => ("GET", get(reports::compare)),
        "getCampaign" => ("GET", get(campaigns::get_one)),
        "editCampaign" => ("PATCH", patch(campaigns::edit)),
        "deleteCampaign" => ("DELETE", delete(campaigns::delete)),
        "listEvents" => ("GET", get(events::list)),
        "exportCampaignEvents" => ("GET", get(exports::events)),
        "eraseRecipient" => ("DELETE", delete(recipients::erase)),
        "optOutRecipient" => ("POST", post(recipients::opt_out)),
        "exportRecipient" => ("GET", get(recipients::export)),
        "recordConsent" => ("POST", post(recipients::record_consent)),
        "getConsent" => ("GET", get(recipients::consents)),
        "withdrawConsent" => ("DELETE", delete(recipients::withdraw_consent)),
        "getRecipientTimeline" => ("GET", get(reports::timeline)),
        "getCampaignSegments" => ("GET", get(segments::counts)),
        "listSegmentRecipients" => ("GET", get(segments::list)),
        "getCampaignProviders" => ("GET", get(segments::providers)),
        "getCampaignSinceSend" => ("GET", get(segments::since_send)),
        "getProviderHistory" => ("GET", get(deliverability::history)),
        "listCampaignConversions" => ("GET", get(conversions::list)),
        "getRecipientSendTime" => ("GET", get(send_times::one)),
        "listCampaignSendTimes" => ("GET", get(send_times::campaign)),
        "getRecipientEngagement" => ("GET", get(engagement::one)),
        "listEngagement" => ("GET", get(engagement::list)),
        "getAuditLog" => ("GET", get(recipients::audit_log)),
        "createWebhook" => ("POST", post(webhooks::create)),
        "listWebhooks" => ("GET", get(webhooks::list)),
        "getWebhook" => ("GET", get(webhooks::get_one)),
        "deleteWebhook" => ("DELETE", delete(webhooks::remove)),
        "listTrackingDomains" => ("GET", get(tracking_domains::list)),
        "addTrackingDomain" => ("POST", post(tracking_domains::add)),
        "getTrackingDomain" => ("GET", get(tracking_domains::get_one)),
        "editTrackingDomain" => ("PATCH", patch(tracking_domains::edit)),
        "removeTrackingDomain" => ("DELETE", delete(tracking_domains::remove)),
        "checkTrackingDomain" => ("POST", post(tracking_domains::check)),
        "renewCertificate" => ("POST", post(tracking_domains::renew)),
        "replayWebhook" => ("POST", post(webhooks::replay)),
        "listWebhookDeliveries" => ("GET", get(webhooks::deliveries)),
        _ => return None,
    })
}

/// The document's (path, method, operationId) triples.
pub fn operations() -> Vec<(String, String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"]
                .as_str()
                .expect("every operation has an id");
            ops.push((path.clone(), method.to_ascii_uppercase(), id.to_string()));
        }
    }
    ops
}

/// The routes under `/api`, one per operation of the document.
pub fn router() -> Router<Arc<AppState>> {
    let mut paths: Vec<(String, MethodRouter<Arc<AppState>>)> = Vec::new();
    for (path, method, id) in operations() {
        let (handler_method, route) =
            handler(&id).unwrap_or_else(|| panic!("openapi.json: no handler for {id}"));
        assert_eq!(
            handler_method, method,
            "openapi.json: {id} is {method} {path} in the document"
        );
        let path = path
            .strip_prefix("/api")
            .expect("every path starts with /api")
            .to_string();
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(route),
            None => paths.push((path, route)),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(&path, route))
        .fallback(|| async { error::ApiError::NoRoute })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_of_the_document_has_a_handler_with_its_method() {
        let ops = super::operations();
        assert!(ops.len() >= 17);
        for (path, method, id) in ops {
            let (handler_method, _) = super::handler(&id).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(handler_method, method, "{id} at {path}");
        }
        let _ = super::router();
    }

    #[test]
    fn the_documents_audit_actions_are_the_ones_the_log_records() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let entry = &doc["components"]["schemas"]["AuditPage"]["properties"]["entries"]["items"];
        let listed: Vec<&str> = (entry["properties"]["action"]["enum"].as_array().unwrap())
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let recorded: Vec<&str> = (crate::domain::AuditAction::ALL.iter())
            .map(|a| a.as_str())
            .collect();
        assert_eq!(listed, recorded);
        let privacy = include_str!("../../PRIVACY.md");
        for action in recorded {
            assert!(
                privacy.contains(&format!("`{action}`")),
                "{action} is not in PRIVACY.md"
            );
        }
    }
}
