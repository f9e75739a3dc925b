//! The report's figures never contradict each other (issue 21): whatever mix of opens and clicks,
//! readers and machines, the stored counts keep floor <= ceiling, unique <= total within one
//! population, reader <= all, and click-to-open <= 1; and they equal what the stored events say.
//! On both engines, over random event mixes.

use super::tests::fresh_store;
use super::*;
use crate::analytics::CampaignReport;
use crate::classify::Internal;
use chrono::Duration as Span;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// A reader, a webmail proxy (a reader), a script (a bot) and Apple's prefetch (a machine).
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "python-requests/2.32.3",
    "Mozilla/5.0",
];

/// One hit: (message, is a click, link, agent, seconds after the send).
type Hit = (usize, bool, u16, usize, i64);

type Fixture = (
    tokio::runtime::Runtime,
    Arc<dyn Store>,
    Option<tempfile::TempDir>,
);

/// One database per engine, shared by every case; each case has a campaign of its own.
fn fixture(postgres: bool) -> &'static Fixture {
    static SQLITE: OnceLock<Fixture> = OnceLock::new();
    static POSTGRES: OnceLock<Fixture> = OnceLock::new();
    (if postgres { &POSTGRES } else { &SQLITE }).get_or_init(|| {
        let (store, dir) = fresh_store(postgres);
        (tokio::runtime::Runtime::new().unwrap(), store, dir)
    })
}

fn hit(tracking_id: i64, (_, click, link, agent, secs): Hit, sent: DateTime<Utc>) -> NewEvent {
    NewEvent {
        kind: if click {
            EventKind::Click
        } else {
            EventKind::Open
        },
        tracking_id,
        link_no: click.then_some(link),
        received_at: sent + Span::seconds(secs),
        method: "GET",
        user_agent: Some(AGENTS[agent].to_string()),
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

/// Stores the hits in a new campaign of `sent` messages and returns its report, links,
/// breakdowns, hourly series and stored events.
async fn store_campaign(
    store: &Arc<dyn Store>,
    sent: usize,
    hits: &[Hit],
    chunk: usize,
) -> (
    CampaignReport,
    Vec<LinkCount>,
    Vec<DimCount>,
    Vec<HourCount>,
    Vec<EventRecord>,
) {
    static NEXT_TRACKING: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    let first = NEXT_TRACKING.fetch_add(sent as i64, std::sync::atomic::Ordering::Relaxed);
    let campaign = store
        .create_campaign(NewCampaign::named("figures"))
        .await
        .unwrap()
        .id;
    let sent_at = Utc::now() - Span::hours(30);
    let messages = (0..sent as i64)
        .map(|i| NewMessage {
            recipient_id: format!("r{}", first + i),
            tracking_id: first + i,
            sent_at,
            links: vec!["https://a.example/".into(), "https://b.example/".into()],
            honeypot: None,
        })
        .collect();
    store.insert_messages(campaign, messages).await.unwrap();
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    let mut events: Vec<NewEvent> = hits
        .iter()
        .map(|h| hit(first + h.0 as i64, *h, sent_at))
        .collect();
    events.sort_by_key(|e| e.received_at);
    for group in events.chunks(chunk) {
        store
            .record_events(group.to_vec().into(), classifier.clone())
            .await
            .unwrap();
    }
    let stats = store.campaign_stats(campaign).await.unwrap();
    let links = store.report_links(campaign).await.unwrap();
    let mut dims = Vec::new();
    for dim in Dim::ALL {
        dims.extend(store.report_breakdown(campaign, dim).await.unwrap());
    }
    let hour = sent_at.timestamp().div_euclid(3600);
    let hours = store.report_hours(campaign, hour, hour + 48).await.unwrap();
    let query = EventQuery {
        campaign: Some(campaign),
        after: EventId(0),
        limit: 100_000,
    };
    let stored = store.events(query).await.unwrap();
    (stats.into(), links, dims, hours, stored)
}

/// Every invariant the issue names, and the counts as the stored events give them.
fn check(report: &CampaignReport, links: &[LinkCount], dims: &[DimCount], hours: &[HourCount]) {
    let s = &report.stats;
    for (name, c) in [("opens", &s.opens), ("clicks", &s.clicks)] {
        assert!(c.unique <= c.total, "{name}: unique <= total: {s:?}");
        assert!(
            c.unique_excluding_machine <= c.total_excluding_machine,
            "{name}: readers' unique <= readers' total: {s:?}"
        );
        assert!(
            c.total_excluding_machine <= c.total,
            "{name}: reader <= all"
        );
        assert!(
            c.unique_excluding_machine <= c.unique,
            "{name}: reader <= all"
        );
    }
    assert!(s.opened_by_readers <= s.opened, "floor <= ceiling: {s:?}");
    assert!(s.opened <= s.sent, "{s:?}");
    assert!(s.opens.unique <= s.opened && s.clicks.unique <= s.opened);
    assert!(s.opens.unique_excluding_machine <= s.opened_by_readers);
    assert!(s.clicks.unique_excluding_machine <= s.opened_by_readers);
    assert!(s.click_implied_opens >= 0);
    let (floor, ceiling) = (report.open_rate_range.floor, report.open_rate_range.ceiling);
    assert!(
        floor.unwrap_or(0.0) <= ceiling.unwrap_or(0.0),
        "{floor:?} > {ceiling:?}"
    );
    for rate in [report.click_to_open_rate, report.reader_click_to_open_rate] {
        assert!(rate.unwrap_or(0.0) <= 1.0, "click-to-open {rate:?}: {s:?}");
    }
    for l in links {
        let t = &l.tally;
        assert!(t.reader_messages <= t.messages && t.messages <= t.events);
        assert!(t.reader_messages <= t.reader_events && t.reader_events <= t.events);
        assert!(t.messages <= s.clicks.unique, "{l:?}");
    }
    assert_eq!(
        links.iter().map(|l| l.tally.events).sum::<i64>(),
        s.clicks.total
    );
    for d in dims {
        let t = &d.tally;
        assert!(
            t.reader_messages <= t.messages && t.messages <= t.events,
            "{d:?}"
        );
        assert!(t.reader_messages <= t.reader_events && t.reader_events <= t.events);
    }
    for (kind, counts) in [(EventKind::Open, &s.opens), (EventKind::Click, &s.clicks)] {
        let of_kind = hours.iter().filter(|h| h.kind == kind);
        let all: i64 = of_kind.clone().map(|h| h.events).sum();
        let readers: i64 = of_kind
            .clone()
            .filter(|h| !h.class.is_machine())
            .map(|h| h.events)
            .sum();
        let firsts: i64 = of_kind.map(|h| h.firsts).sum();
        assert_eq!(
            (all, readers, firsts),
            (counts.total, counts.total_excluding_machine, counts.unique),
            "the series adds up to the totals ({kind:?})"
        );
    }
}

/// The headline counts straight from the stored events.
fn from_events(report: &CampaignReport, events: &[EventRecord]) {
    let machine = |e: &EventRecord| Class::parse(&e.class).is_some_and(|c| c.is_machine());
    let messages = |f: &dyn Fn(&EventRecord) -> bool| {
        events
            .iter()
            .filter(|e| f(e))
            .map(|e| e.message_id)
            .collect::<BTreeSet<_>>()
            .len() as i64
    };
    let s = &report.stats;
    assert_eq!(s.opened, messages(&|_| true));
    assert_eq!(s.opened_by_readers, messages(&|e| !machine(e)));
    let opens = |e: &EventRecord| e.kind == EventKind::Open;
    assert_eq!(s.opens.unique, messages(&opens));
    assert_eq!(
        s.opens.unique_excluding_machine,
        messages(&|e| opens(e) && !machine(e))
    );
    assert_eq!(
        s.clicks.unique_excluding_machine,
        messages(&|e| !opens(e) && !machine(e))
    );
}

fn hits() -> impl Strategy<Value = (usize, Vec<Hit>, usize)> {
    (1usize..=12).prop_flat_map(|sent| {
        let hit = (
            0..sent,
            any::<bool>(),
            1u16..=2,
            0..AGENTS.len(),
            0i64..7_200,
        );
        (
            Just(sent),
            prop::collection::vec(hit, 0..40),
            prop::sample::select(vec![1usize, 3, 64]),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn figures_never_contradict_each_other((sent, hits, chunk) in hits(), postgres in any::<bool>()) {
        let (rt, store, _) = fixture(postgres);
        let (report, links, dims, hours, events) =
            rt.block_on(store_campaign(store, sent, &hits, chunk));
        check(&report, &links, &dims, &hours);
        from_events(&report, &events);
    }
}

/// The example: 20 sent, 12 readers click with images blocked, 3 open twice.
#[test]
fn readers_who_click_with_images_blocked_keep_the_floor_below_the_ceiling() {
    let mut hits: Vec<Hit> = (0..12).map(|m| (m, true, 1, 0, 600 + m as i64)).collect();
    for m in 12..15 {
        hits.push((m, false, 0, 0, 100));
        hits.push((m, false, 0, 0, 5_000));
    }
    let (rt, store, _) = fixture(false);
    let (report, links, dims, hours, events) = rt.block_on(store_campaign(store, 20, &hits, 64));
    check(&report, &links, &dims, &hours);
    from_events(&report, &events);
    let s = &report.stats;
    assert_eq!(
        (s.opened, s.opened_by_readers, s.click_implied_opens),
        (15, 15, 12)
    );
    assert_eq!(
        (
            s.opens.unique_excluding_machine,
            s.opens.total_excluding_machine
        ),
        (3, 6)
    );
    assert_eq!(report.open_rate_range.floor, Some(0.75));
    assert_eq!(report.open_rate_range.ceiling, Some(0.75));
    assert_eq!(report.reader_click_to_open_rate, Some(0.8));
}
