//! Fills a fresh SQLite database with one campaign of many events for `bench/reports`, through
//! the library's own write path (`SqliteStore::record_events`, the writer's group commit), so every
//! event is classified and rolled up as the server would do it.
//!
//! ```sh
//! cargo run --release --example bench_seed -- --database /tmp/mb.db --events 10000000
//! ```
//!
//! About ten events per message (1 to 19), spread over 30 days and front-loaded, from a mix of
//! recipients: Apple Mail Privacy Protection, Gmail's image proxy, Outlook, Yahoo's proxy, phones,
//! corporate mail behind Microsoft's link scanner (clicks on every link seconds after delivery),
//! and scripts. Deterministic for a given `--seed`.

use chrono::{DateTime, Duration, DurationRound, Utc};
use mailbeacon::classify::{Classifier, Internal};
use mailbeacon::store::sqlite::SqliteStore;
use mailbeacon::store::{
    Campaigns, EventKind, Ingest, NewCampaign, NewEvent, NewMessage, RecordOutcome,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "bench_seed --database PATH [--events N] [--per-message N] [--days N] \
                     [--batch N] [--seed N]";

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
const MAC_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const ANDROID_CHROME: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36";
const SAMSUNG: &str = "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36";
const APPLE_MPP: &str = "Mozilla/5.0";
const GMAIL_PROXY: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
const YAHOO_PROXY: &str =
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html";
const OUTLOOK: &str = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)";
const SCRIPTS: [&str; 3] = [
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
];
const COUNTRIES: [(&str, u64); 12] = [
    ("US", 35),
    ("DE", 12),
    ("GB", 10),
    ("FR", 8),
    ("BR", 6),
    ("IN", 6),
    ("CA", 5),
    ("NL", 4),
    ("ES", 4),
    ("JP", 4),
    ("AU", 3),
    ("IT", 3),
];
const LINKS: usize = 3;

/// splitmix64: a fast, well-mixed generator; its finaliser is a bijection, which makes unique
/// random-looking tracking ids.
struct Rng(u64);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

struct Args {
    database: PathBuf,
    events: u64,
    per_message: u64,
    days: i64,
    batch: usize,
    seed: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        database: PathBuf::new(),
        events: 10_000_000,
        per_message: 10,
        days: 30,
        batch: 20_000,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        let number = |v: String| {
            v.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{v}: {e}"))
        };
        match flag.as_str() {
            "--database" => a.database = PathBuf::from(value()?),
            "--events" => a.events = number(value()?)?,
            "--per-message" => a.per_message = number(value()?)?.clamp(1, 50),
            "--days" => a.days = number(value()?)?.max(1) as i64,
            "--batch" => a.batch = number(value()?)?.max(1) as usize,
            "--seed" => a.seed = number(value()?)?,
            _ => return Err(USAGE.to_string()),
        }
    }
    if a.database.as_os_str().is_empty() {
        return Err(USAGE.to_string());
    }
    if a.database.exists() {
        return Err(format!("{} exists: give a new file", a.database.display()));
    }
    Ok(a)
}

/// How many events each message gets: 1 to 2 * mean - 1, then evened out to `total` exactly.
fn counts(rng: &mut Rng, total: u64, mean: u64) -> Vec<u32> {
    let messages = total.div_ceil(mean).max(1);
    let spread = 2 * mean - 1;
    let mut counts: Vec<u32> = (0..messages)
        .map(|_| (1 + (rng.below(spread) + rng.below(spread)) / 2) as u32)
        .collect();
    let mut sum: u64 = counts.iter().map(|c| *c as u64).sum();
    let (mut i, len) = (0usize, counts.len());
    while sum != total {
        let c = &mut counts[i % len];
        if sum < total && (*c as u64) < spread {
            *c += 1;
            sum += 1;
        } else if sum > total && *c > 1 {
            *c -= 1;
            sum -= 1;
        }
        i += 1;
    }
    counts
}

fn tracking_id(seed: u64, message: u64) -> i64 {
    mix(seed.wrapping_mul(0x1000_0000_0000) ^ (message + 1)) as i64
}

#[derive(Clone, Copy)]
enum Profile {
    AppleMpp,
    Gmail,
    Outlook,
    SafeLinks,
    Yahoo,
    Phone,
    Script,
}

fn profile(rng: &mut Rng) -> Profile {
    match rng.below(100) {
        0..35 => Profile::AppleMpp,
        35..62 => Profile::Gmail,
        62..74 => Profile::Outlook,
        74..82 => Profile::SafeLinks,
        82..87 => Profile::Yahoo,
        87..95 => Profile::Phone,
        _ => Profile::Script,
    }
}

fn link(rng: &mut Rng) -> u16 {
    match rng.below(10) {
        0..6 => 1,
        6..9 => 2,
        _ => 3,
    }
}

/// One message's events, in the order they arrive.
fn message_events(
    rng: &mut Rng,
    tracking_id: i64,
    sent_at: DateTime<Utc>,
    n: u32,
    days: i64,
) -> Vec<NewEvent> {
    let p = profile(rng);
    let country = {
        let mut pick = rng.below(100);
        COUNTRIES
            .iter()
            .find(|(_, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .map_or("US", |(c, _)| c)
    };
    // Front-loaded over the window: most activity in the first days.
    let window = (days * 86_400) as f64;
    let mut offsets: Vec<f64> = (0..n)
        .map(|_| 60.0 + rng.unit().powf(2.5) * window)
        .collect();
    offsets.sort_by(f64::total_cmp);
    let (desktop, mobile) = match p {
        Profile::AppleMpp => (MAC_SAFARI, IPHONE_SAFARI),
        Profile::Outlook | Profile::SafeLinks => (EDGE, IPHONE_SAFARI),
        Profile::Phone => (SAMSUNG, ANDROID_CHROME),
        _ => (CHROME, ANDROID_CHROME),
    };
    let mut events = Vec::with_capacity(n as usize);
    for (i, offset) in offsets.iter().enumerate() {
        let mut at = sent_at + Duration::milliseconds((offset * 1000.0) as i64);
        let mut kind = if rng.chance(0.2) {
            EventKind::Click
        } else {
            EventKind::Open
        };
        let mut link_no = None;
        let mut method = "GET";
        let mut tags: Vec<&'static str> = Vec::new();
        let ua: &str;
        let ip: &str;
        match p {
            Profile::SafeLinks if i < LINKS => {
                // The gateway follows every link seconds after delivery, in a burst.
                kind = EventKind::Click;
                link_no = Some(i as u16 + 1);
                at = sent_at + Duration::milliseconds(3_000 + 200 * i as i64);
                tags.push("microsoft-eop");
                ua = CHROME;
                ip = "40.107.0.0";
            }
            Profile::Script => {
                ua = SCRIPTS[rng.below(3) as usize];
                ip = "198.51.100.0";
                if rng.chance(0.3) {
                    method = "HEAD";
                }
            }
            _ if kind == EventKind::Click => {
                ua = if rng.chance(0.5) { desktop } else { mobile };
                ip = "203.0.113.0";
            }
            Profile::AppleMpp => {
                ua = APPLE_MPP;
                ip = "104.28.37.0";
                tags.push("apple-mpp-egress");
            }
            Profile::Gmail => {
                ua = GMAIL_PROXY;
                ip = "66.249.84.0";
                tags.push("google-image-proxy");
            }
            Profile::Yahoo => {
                ua = YAHOO_PROXY;
                ip = "74.6.0.0";
            }
            Profile::Outlook | Profile::SafeLinks => {
                ua = OUTLOOK;
                ip = "203.0.113.0";
            }
            Profile::Phone => {
                ua = if rng.chance(0.7) { mobile } else { desktop };
                ip = "192.0.2.0";
            }
        }
        if kind == EventKind::Click && link_no.is_none() {
            link_no = Some(link(rng));
        }
        events.push(NewEvent {
            kind,
            tracking_id,
            link_no,
            received_at: at,
            method,
            user_agent: Some(ua.to_string()),
            keep_user_agent: true,
            client_ip: Some(ip.to_string()),
            headers: None,
            ip_tags: tags,
            failed_check: false,
            country: Some(country.to_string()),
            region: None,
            without_consent: None,
        });
    }
    events.sort_by_key(|e| e.received_at);
    events
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (store, _) = SqliteStore::open(&a.database, false).unwrap_or_else(|e| {
        eprintln!("cannot open {}: {e:#}", a.database.display());
        std::process::exit(1);
    });
    let store = Arc::new(store);
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    classifier.agents.warm_up();
    let mut rng = Rng(a.seed);
    let counts = counts(&mut rng, a.events, a.per_message);
    let messages = counts.len() as u64;
    let started = Instant::now();

    let campaign = store
        .create_campaign(NewCampaign::named("bench"))
        .await
        .unwrap()
        .id;
    let t0 = (Utc::now() - Duration::days(a.days + 1))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    // Sent over two hours.
    let sent_at = move |m: u64| t0 + Duration::milliseconds((m * 7_200_000 / messages) as i64);
    for start in (0..messages).step_by(10_000) {
        let batch = (start..(start + 10_000).min(messages))
            .map(|m| NewMessage {
                recipient_id: format!("r{m}@example.com"),
                tracking_id: tracking_id(a.seed, m),
                sent_at: sent_at(m),
                links: vec![
                    "https://shop.example.com/sale?utm_campaign=bench".into(),
                    format!("https://shop.example.com/product/{}", m % 500),
                    "https://shop.example.com/help".into(),
                ],
                honeypot: None,
            })
            .collect();
        store.insert_messages(campaign, batch).await.unwrap();
    }
    let registered = started.elapsed();
    println!(
        "registered {messages} messages in {:.1} s",
        registered.as_secs_f64()
    );

    // Events are made on a thread of their own, a few batches ahead of the writer.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<NewEvent>>(2);
    let (seed, days, batch_size) = (a.seed, a.days, a.batch);
    let generator = std::thread::spawn(move || {
        let mut rng = Rng(seed ^ 0x5eed);
        let mut batch = Vec::with_capacity(batch_size + 64);
        for (m, n) in counts.iter().enumerate() {
            let m = m as u64;
            batch.extend(message_events(
                &mut rng,
                tracking_id(seed, m),
                sent_at(m),
                *n,
                days,
            ));
            if batch.len() >= batch_size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size + 64));
                if tx.send(full).is_err() {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
    });
    let writing = Instant::now();
    let (mut stored, mut next_report) = (0u64, 1_000_000u64);
    while let Ok(batch) = tokio::task::block_in_place(|| rx.recv()) {
        let outcomes = store
            .record_events(batch.into(), classifier.clone())
            .await
            .unwrap_or_else(|e| {
                eprintln!("storing events failed: {e}");
                std::process::exit(1);
            });
        for o in &outcomes {
            assert!(matches!(o, RecordOutcome::Recorded { .. }), "{o:?}");
        }
        stored += outcomes.len() as u64;
        if stored >= next_report {
            let s = writing.elapsed().as_secs_f64();
            println!(
                "  {stored:>11} events  {s:>7.1} s  {:>8.0} events/s",
                stored as f64 / s
            );
            next_report += 1_000_000;
        }
    }
    generator.join().unwrap();
    let s = writing.elapsed().as_secs_f64();
    println!(
        "seeded campaign {campaign}: {messages} messages, {stored} events in {:.1} s \
         ({:.0} events/s through SqliteStore::record_events, batches of {})",
        started.elapsed().as_secs_f64(),
        stored as f64 / s,
        a.batch
    );
}
