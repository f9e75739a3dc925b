//! Micro-benchmarks of the per-request and per-message work: token signing and checking,
//! classification, HTML instrumentation. `cargo bench --bench micro` prints the figures;
//! `cargo test` runs each once.

use divan::{Bencher, black_box, counter::BytesCount};
use mailbeacon::classify::{Classifier, Internal, StoredHit};
use mailbeacon::instrument::{InstrumentOptions, instrument};
use mailbeacon::store::sqlite::SqliteStore;
use mailbeacon::store::{Campaigns, EventKind, Ingest, NewCampaign, NewEvent, NewMessage};
use mailbeacon::token::{KeyRing, SigningKey};
use std::sync::Arc;

fn main() {
    divan::main();
}

fn ring() -> KeyRing {
    KeyRing::new(&[SigningKey::generate(1), SigningKey::generate(2)]).unwrap()
}

#[divan::bench]
fn sign_open_token(b: Bencher) {
    let ring = ring();
    b.bench(|| ring.sign_open(black_box(0x1234_5678_9abc_def0)));
}

#[divan::bench]
fn verify_open_token(b: Bencher) {
    let ring = ring();
    let token = ring.sign_open(42);
    b.bench(|| ring.verify_open(black_box(&token)).unwrap());
}

#[divan::bench]
fn verify_click_token_forged(b: Bencher) {
    let ring = ring();
    let mut token = ring.sign_click(42, 3);
    token.replace_range(30..31, if &token[30..31] == "A" { "B" } else { "A" });
    b.bench(|| ring.verify_click(black_box(&token)).is_err());
}

/// A newsletter of about 100 KB with ~280 links, like the ones senders send.
fn email_100kb() -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>td{padding:8px}</style></head><body><table>",
    );
    let mut i = 0;
    while html.len() < 100_000 {
        i += 1;
        html.push_str(&format!(
            "<tr><td style=\"font-family:Arial\"><p>Artikel {i}: Grüße — 日本 &amp; mehr Text für die \
             Zeile. Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p><!-- row {i} -->\
             <a href=\"https://shop.test/p/{i}?utm_source=mail&amp;utm_medium=email\">Ansehen</a></td></tr>\n"
        ));
    }
    html.push_str(
        "</table><a href=\"https://shop.test/unsubscribe\">Unsubscribe</a></body></html>",
    );
    html
}

#[divan::bench]
fn instrument_100kb_email(b: Bencher) {
    let html = email_100kb();
    let click = |n: u32| format!("https://t.example.com/c/AbK9XSdewulrAAFvyY8_PYS3FnlVlT6g{n:04}");
    let opts = InstrumentOptions {
        pixel_url: "https://t.example.com/o/AbK9XSdewulrNUljfY_0HCVRUVxz1kcXuQ.gif",
        click_url: &click,
        max_links: 10_000,
        honeypot_url: None,
        stop_tracking_url: None,
    };
    b.counter(BytesCount::of_str(&html))
        .bench_local(|| instrument(black_box(&html), &opts).unwrap());
}

const AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "python-requests/2.31.0",
    "Mozilla/5.0",
];

fn hit(ua: &str) -> StoredHit<'_> {
    let now = chrono::Utc::now();
    StoredHit {
        kind: EventKind::Click,
        link_no: Some(1),
        method: "GET",
        user_agent: Some(ua),
        client_ip: Some("203.0.113.0"),
        headers: None,
        ip_tags: "",
        received_at: now,
        sent_at: now - chrono::Duration::hours(1),
        failed_check_at: None,
        recipient_id: "r-1",
    }
}

/// One event with its client details, user agents seen before (the usual case).
#[divan::bench]
fn classify_event(b: Bencher) {
    let classifier = Classifier::builtin(Internal::default());
    for ua in AGENTS {
        classifier.classify_stored(&hit(ua));
    }
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) % AGENTS.len();
        classifier.classify_stored(black_box(&hit(AGENTS[i])))
    });
}

/// The address lists an arriving request's address falls in: done on the request path, over all
/// 30 shipped lists (about 9,400 ranges).
#[divan::bench]
fn address_lists_of_an_address(b: Bencher) {
    let classifier = Classifier::builtin(Internal::default());
    let addresses: Vec<std::net::IpAddr> = [
        "203.0.113.9",
        "34.201.72.208",
        "66.249.84.1",
        "172.224.226.9",
        "148.163.137.20",
        "2a01:4f8::1",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let mut i = 0;
    b.bench_local(|| {
        i = (i + 1) % addresses.len();
        classifier.ranges.tags(black_box(addresses[i]))
    });
}

/// One event whose user agent was never seen (parsed by uap-core).
#[divan::bench]
fn classify_event_new_agent(b: Bencher) {
    let classifier = Classifier::builtin(Internal::default());
    classifier.classify_stored(&hit(AGENTS[0]));
    let mut i = 0u64;
    b.bench_local(|| {
        i += 1;
        let ua = format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{i}.0.0.0 Safari/537.36");
        classifier.classify_stored(black_box(&hit(&ua)))
    });
}

/// A fresh SQLite store with one campaign of `messages` messages (tracking ids 1..=messages), sent
/// at `sent`, and the runtime and directory it lives in.
fn store_with_messages(
    messages: i64,
    sent: chrono::DateTime<chrono::Utc>,
) -> (tokio::runtime::Runtime, tempfile::TempDir, SqliteStore) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open(&dir.path().join("bench.db"), false).unwrap();
    rt.block_on(async {
        let c = store
            .create_campaign(NewCampaign::named("bench"))
            .await
            .unwrap()
            .id;
        let batch: Vec<NewMessage> = (1..=messages)
            .map(|i| NewMessage {
                recipient_id: format!("r{i}@example.com"),
                tracking_id: i,
                sent_at: sent,
                links: vec!["https://shop.test/".into()],
                honeypot: None,
            })
            .collect();
        store.insert_messages(c, batch).await.unwrap();
    });
    (rt, dir, store)
}

fn open(tracking_id: i64, at: chrono::DateTime<chrono::Utc>, ua: &str) -> NewEvent {
    NewEvent {
        kind: EventKind::Open,
        tracking_id,
        link_no: None,
        received_at: at,
        method: "GET",
        user_agent: Some(ua.into()),
        keep_user_agent: true,
        client_ip: Some("192.0.2.0".into()),
        headers: None,
        ip_tags: Vec::new(),
        failed_check: false,
        country: None,
        region: None,
        without_consent: None,
    }
}

/// One group commit of 64 pixel loads (each a new message's first open, the common case), rollups
/// included: what the writer pays per batch.
#[divan::bench(sample_count = 30)]
fn record_64_opens(b: Bencher) {
    let messages = 200_000;
    let (rt, _dir, store) =
        store_with_messages(messages, chrono::Utc::now() - chrono::Duration::hours(2));
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    let mut next = 0i64;
    b.counter(divan::counter::ItemsCount::new(64usize))
        .bench_local(|| {
            let batch: Vec<NewEvent> = (0..64)
                .map(|_| {
                    next = next % messages + 1;
                    open(next, chrono::Utc::now(), AGENTS[0])
                })
                .collect();
            rt.block_on(store.record_events(batch.into(), classifier.clone()))
                .unwrap()
        });
}

/// One group commit of 64 opens of messages that each have 50 earlier events (an hour apart, two
/// mail clients): the writer's cost when histories are long, as for a newsletter's regular readers.
/// The clock moves a minute per batch, so each message is hit every ten minutes.
#[divan::bench(sample_count = 30)]
fn record_64_opens_after_50_events_each(b: Bencher) {
    let messages = 640i64;
    let sent = chrono::Utc::now() - chrono::Duration::days(30);
    let (rt, _dir, store) = store_with_messages(messages, sent);
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    rt.block_on(async {
        for n in 0..50 {
            let at = sent + chrono::Duration::hours(n + 1);
            let ua = AGENTS[n as usize % 2];
            let events: Vec<NewEvent> = (1..=messages).map(|m| open(m, at, ua)).collect();
            for chunk in events.chunks(64) {
                store
                    .record_events(chunk.to_vec().into(), classifier.clone())
                    .await
                    .unwrap();
            }
        }
    });
    let (mut next, mut clock) = (0i64, sent + chrono::Duration::hours(60));
    b.counter(divan::counter::ItemsCount::new(64usize))
        .bench_local(|| {
            clock += chrono::Duration::minutes(1);
            let batch: Vec<NewEvent> = (0..64)
                .map(|_| {
                    next = next % messages + 1;
                    open(next, clock, AGENTS[0])
                })
                .collect();
            rt.block_on(store.record_events(batch.into(), classifier.clone()))
                .unwrap()
        });
}
