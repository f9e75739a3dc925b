//! PostgreSQL store throughput from one and from several writers on one database: each writer is
//! a thread with a store of its own (its own connections, as another mailbeacon process has)
//! doing what the store worker does with the journal, `Store::record_journaled` of batches of
//! pixel opens, all writers on the same campaign's messages (each on its own share of them with
//! `--disjoint`). Prints events stored per second for each number of writers, so the same run
//! shows whether a second process adds throughput, and how fast the messages were registered.
//!
//! ```sh
//! cargo run --release --example bench_store -- --events 200000 --writers 1,2
//! ```
//!
//! PostgreSQL from `MAILBEACON_TEST_POSTGRES` (default postgres://postgres@127.0.0.1:5432/test),
//! a fresh schema per measurement.

use chrono::{Duration, Utc};
use mailbeacon::classify::{Classifier, Internal};
use mailbeacon::store::postgres::{PostgresStore, test_schema};
use mailbeacon::store::{Campaigns, EventKind, Ingest, NewCampaign, NewEvent, NewMessage};
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "bench_store [--events N] [--batch N] [--messages N] [--writers 1,2,...] \
                     [--rounds N] [--disjoint]";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

struct Args {
    events: usize,
    batch: usize,
    messages: usize,
    writers: Vec<usize>,
    rounds: usize,
    /// Each writer on messages of its own (as when a load balancer keeps a message on one process).
    disjoint: bool,
}

fn args() -> Args {
    let mut a = Args {
        events: 200_000,
        batch: 2048,
        messages: 20_000,
        writers: vec![1, 2],
        rounds: 2,
        disjoint: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--disjoint" {
            a.disjoint = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value; {USAGE}"));
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{flag}: {USAGE}"))
        };
        match flag.as_str() {
            "--events" => a.events = number(),
            "--batch" => a.batch = number(),
            "--messages" => a.messages = number(),
            "--rounds" => a.rounds = number(),
            "--writers" => {
                a.writers = value
                    .split(',')
                    .map(|w| w.parse().unwrap_or_else(|_| panic!("--writers: {USAGE}")))
                    .collect()
            }
            _ => panic!("unknown flag {flag}; {USAGE}"),
        }
    }
    a
}

/// splitmix64, for the order in which messages are hit.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Events per second stored by `writers` writers sharing `a.events` events, and the seconds the
/// registration of the messages took (`Campaigns::insert_messages`, 5,000 at a time).
fn measure(a: &Args, runtime: &tokio::runtime::Runtime, writers: usize) -> (f64, f64) {
    let url = test_schema("benchstore").expect("PostgreSQL");
    let stores: Vec<Arc<PostgresStore>> = (0..writers)
        .map(|_| Arc::new(PostgresStore::open(&url).expect("open").0))
        .collect();
    let sent_at = Utc::now() - Duration::hours(2);
    let tracking: Vec<i64> = (0..a.messages as u64).map(|i| mix(i) as i64).collect();
    let registering = Instant::now();
    runtime.block_on(async {
        let campaign = stores[0]
            .create_campaign(NewCampaign::named("bench"))
            .await
            .unwrap();
        for chunk in tracking.chunks(5000) {
            let messages = chunk
                .iter()
                .enumerate()
                .map(|(i, t)| NewMessage {
                    recipient_id: format!("r{t}-{i}@example.com"),
                    tracking_id: *t,
                    sent_at,
                    links: vec!["https://shop.example.com/".into()],
                    honeypot: None,
                })
                .collect();
            stores[0]
                .insert_messages(campaign.id, messages)
                .await
                .unwrap();
        }
    });
    let registered = registering.elapsed().as_secs_f64();
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    classifier.agents.warm_up();
    let tracking = Arc::new(tracking);
    let started = Instant::now();
    let threads: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, store)| {
            let (classifier, tracking) = (classifier.clone(), tracking.clone());
            let (events, batch) = (a.events / writers, a.batch);
            // The messages this writer hits: all of them, or its own share.
            let (from, count) = if a.disjoint {
                let share = tracking.len() / writers;
                (w * share, share)
            } else {
                (0, tracking.len())
            };
            std::thread::spawn(move || {
                let journal = format!("bench-writer-{w}");
                let mut done = 0;
                let mut n = 0u64;
                while done < events {
                    let size = batch.min(events - done);
                    let batch: Vec<NewEvent> = (0..size)
                        .map(|_| {
                            n += 1;
                            let pick = from + mix(n * 31 + w as u64) as usize % count;
                            NewEvent {
                                kind: EventKind::Open,
                                tracking_id: tracking[pick],
                                link_no: None,
                                received_at: Utc::now(),
                                method: "GET",
                                user_agent: Some(CHROME.into()),
                                keep_user_agent: true,
                                client_ip: Some("192.0.2.0".into()),
                                headers: None,
                                ip_tags: Vec::new(),
                                failed_check: false,
                                country: None,
                                region: None,
                                without_consent: None,
                            }
                        })
                        .collect();
                    store
                        .record_journaled(&batch, &classifier, &journal, (1, n))
                        .expect("stored");
                    done += size;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rate = (a.events / writers * writers) as f64 / started.elapsed().as_secs_f64();
    (rate, registered)
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!(
        "# cargo run --release --example bench_store -- --events {} --batch {} --messages {} --writers {} --rounds {}{}",
        a.events,
        a.batch,
        a.messages,
        a.writers
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join(","),
        a.rounds,
        if a.disjoint { " --disjoint" } else { "" }
    );
    println!("round  writers  events/s  registered messages/s");
    for round in 1..=a.rounds {
        for &w in &a.writers {
            let (rate, registered) = measure(&a, &runtime, w);
            let per_second = a.messages as f64 / registered;
            println!("{round:>5}  {w:>7}  {rate:>8.0}  {per_second:>21.0}");
        }
    }
}
