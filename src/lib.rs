//! mailbeacon: a self-hosted email open- and click-tracking service. The binary (`src/main.rs`) only
//! parses the command line; everything it can do is here.

pub mod acme;
pub mod analytics;
pub mod api;
pub mod app;
pub mod campaigns;
pub mod classify;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod credentials;
pub mod dashboard;
pub mod deliverability;
pub mod domain;
pub mod encode;
pub mod error;
pub mod export;
pub mod geo;
pub mod html;
pub mod ingest;
pub mod instrument;
pub mod limits;
pub mod memory;
pub mod messages;
pub mod reports;
pub mod server;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod track;
pub mod tracking_domains;
pub mod webhook_delivery;
pub mod webhooks;
