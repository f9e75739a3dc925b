//! The metrics `/metrics` exposes: each family named, described (`# HELP`) and typed here, its
//! histogram buckets chosen, so that Prometheus and `promtool check metrics` read them as they are
//! meant. A metric recorded anywhere else must be listed here too (a test checks the output).

use anyhow::Context;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Duration;

/// Buckets of a duration in seconds, from half a millisecond to ten seconds.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of a number of events.
const SIZES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];

/// Histograms, with their buckets (the exporter would write summaries otherwise, whose
/// quantiles over a sliding window can contradict each other).
const HISTOGRAMS: &[(&str, &[f64], Unit, &str)] = &[
    (
        "mailbeacon_ingest_commit_seconds",
        SECONDS,
        Unit::Seconds,
        "Time to store one batch of journaled events in the database.",
    ),
    (
        "mailbeacon_ingest_batch_size",
        SIZES,
        Unit::Count,
        "Events stored per database transaction.",
    ),
    (
        "mailbeacon_journal_group_size",
        SIZES,
        Unit::Count,
        "Events appended to the journal per write.",
    ),
    (
        "mailbeacon_webhook_request_seconds",
        SECONDS,
        Unit::Seconds,
        "Time of one webhook request, until the receiver answered or it failed.",
    ),
];

const COUNTERS: &[(&str, &str)] = &[
    (
        "mailbeacon_tls_reloads_total",
        "Changed certificate files read again, by result: loaded, or kept (the new files did not load; the certificate in use stays).",
    ),
    (
        "mailbeacon_track_requests_total",
        "Pixel and click requests answered, by route and result.",
    ),
    (
        "mailbeacon_track_refused_total",
        "Tracking requests refused, by route and reason (a bad token, an unknown message).",
    ),
    (
        "mailbeacon_ingest_stored_total",
        "Journaled events the store worker applied, by outcome.",
    ),
    (
        "mailbeacon_ingest_refused_total",
        "Events refused before the journal (it is full or cannot be written), by reason.",
    ),
    (
        "mailbeacon_ingest_commit_failures_total",
        "Store transactions the database refused; the events wait in the journal.",
    ),
    (
        "mailbeacon_ingest_conflicts_total",
        "Store transactions undone by a conflict with another process and tried again.",
    ),
    (
        "mailbeacon_webhook_notices_total",
        "Webhook notices by endpoint and what became of them (delivered, dead).",
    ),
    (
        "mailbeacon_webhook_requests_total",
        "Webhook requests sent, by endpoint and result.",
    ),
    (
        "mailbeacon_conversions_total",
        "Conversions reported back, by result: stored, duplicate (stored before), not_kept (consent or opt-out), refused.",
    ),
    (
        "mailbeacon_provider_drops_total",
        "Campaigns whose readers at a mailbox provider opened far less in the first day than the provider's trailing average (checked by this process).",
    ),
];

const GAUGES: &[(&str, Unit, &str)] = &[
    (
        "mailbeacon_journal_pending_events",
        Unit::Count,
        "Answered events not yet in the database and its reports.",
    ),
    (
        "mailbeacon_journal_pending_bytes",
        Unit::Bytes,
        "Bytes of the journal not yet stored.",
    ),
    (
        "mailbeacon_journal_lag_seconds",
        Unit::Seconds,
        "Age of the oldest answered event not yet stored.",
    ),
    (
        "mailbeacon_provider_open_rate_ratio",
        Unit::Count,
        "The latest checked campaign's first-day reader open rate at a provider, divided by the provider's trailing average.",
    ),
    (
        "mailbeacon_webhook_lag_seconds",
        Unit::Seconds,
        "How long the oldest notice due at an endpoint has waited.",
    ),
];

/// Installs the Prometheus recorder with every family described.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets, _, _) in HISTOGRAMS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).into()), buckets)?;
    }
    let handle = builder
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    for (name, unit, help) in HISTOGRAMS.iter().map(|(n, _, u, h)| (n, u, h)) {
        metrics::describe_histogram!(*name, *unit, *help);
    }
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, Unit::Count, *help);
    }
    for (name, unit, help) in GAUGES {
        metrics::describe_gauge!(*name, *unit, *help);
    }
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
