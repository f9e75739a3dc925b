//! mailbeacon: a self-hosted email open- and click-tracking service. The binary (`src/main.rs`) only
//! parses the command line; everything it can do is here.

pub mod analytics;
pub mod api;
pub mod classify;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod export;
pub mod geo;
pub mod ingest;
pub mod instrument;
pub mod memory;
pub mod messages;
pub mod server;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod track;
pub mod webhooks;
