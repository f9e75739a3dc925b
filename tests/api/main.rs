//! Integration tests: each starts the real server on a free port and talks HTTP to it (the
//! browser tests also drive headless Chromium against it).

mod ab_test;
mod accessibility;
mod browser;
mod campaigns;
mod classification;
mod cli;
mod click_map;
mod concurrent_writers;
mod conversion_consent;
mod conversions;
mod dashboard;
mod disk_privacy;
mod durability;
mod engagement;
mod errors;
mod exports;
mod hardening;
mod helpers;
mod migrate_data;
mod mmdb;
mod multinode;
mod openapi_conformance;
mod privacy;
mod privacy_levels;
mod providers_over_time;
mod readme;
mod reports;
mod seed;
mod segments;
mod send_times;
mod tls;
mod tracker;
mod webhook_receiver;
mod webhook_settings;
mod webhooks;
