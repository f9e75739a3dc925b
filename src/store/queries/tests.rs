//! The rollups the writer keeps incrementally must equal the ones rebuilt from the event log,
//! after new events, burst relabelling, reclassification and erasure alike.

use super::*;
use crate::classify::Internal;
use crate::store::sqlite::SqliteStore;
use chrono::Duration as Span;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GMAIL: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
const SCRIPT: &str = "python-requests/2.32.3";
const MPP: &str = "Mozilla/5.0";

fn event(
    kind: EventKind,
    tracking_id: i64,
    link_no: Option<u16>,
    at: DateTime<Utc>,
    ua: &str,
) -> NewEvent {
    NewEvent {
        kind,
        tracking_id,
        link_no,
        received_at: at,
        method: "GET",
        user_agent: Some(ua.to_string()),
        keep_user_agent: true,
        client_ip: Some("192.0.2.0".into()),
        headers: None,
        ip_tags: Vec::new(),
        failed_check: false,
        country: (tracking_id % 2 == 0).then(|| "DE".to_string()),
        region: None,
        without_consent: None,
    }
}

fn dump(c: &mut dyn Conn) -> StoreResult<Vec<String>> {
    let campaigns: Vec<CampaignId> = c
        .query("SELECT id FROM campaigns ORDER BY id", params![])?
        .iter()
        .map(|r| r.get(0))
        .collect::<StoreResult<_>>()?;
    let mut rows = Vec::new();
    for id in campaigns {
        rows.extend(rollups::dump(c, id)?);
    }
    Ok(rows)
}

async fn assert_rollups_match_a_rebuild<E: Engine>(store: &SqlStore<E>) {
    let (kept, rebuilt) = store
        .write(|c| {
            let kept = dump(c)?;
            c.begin()?;
            rollups::rebuild(c)?;
            let rebuilt = dump(c)?;
            c.rollback()?;
            Ok((kept, rebuilt))
        })
        .await
        .unwrap();
    assert!(!kept.is_empty());
    assert_eq!(kept, rebuilt);
}

/// A fresh store of either engine (SQLite in a temporary directory, kept alive with it).
pub(crate) fn fresh_store(postgres: bool) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    if postgres {
        return (Arc::new(postgres_store()), None);
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open(&dir.path().join("t.db"), false).unwrap();
    (Arc::new(store), Some(dir))
}

/// A fresh PostgreSQL store in a schema of its own (see `postgres::test_schema`).
pub(crate) fn postgres_store() -> super::super::postgres::PostgresStore {
    let url = super::super::postgres::test_schema("unit").unwrap_or_else(|e| panic!("{e}"));
    super::super::postgres::PostgresStore::open(&url).unwrap().0
}

#[tokio::test]
async fn incremental_rollups_equal_a_rebuild_from_the_event_log_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open(&dir.path().join("t.db"), false).unwrap();
    incremental_rollups_equal_a_rebuild_from_the_event_log(store).await;
}

#[tokio::test]
async fn incremental_rollups_equal_a_rebuild_from_the_event_log_postgres() {
    let store = tokio::task::spawn_blocking(postgres_store).await.unwrap();
    incremental_rollups_equal_a_rebuild_from_the_event_log(store).await;
}

async fn incremental_rollups_equal_a_rebuild_from_the_event_log<E: Engine>(store: SqlStore<E>) {
    let sent = Utc::now() - Span::hours(30);
    let mut tracking = 0;
    let mut campaigns = Vec::new();
    for name in ["A", "B"] {
        let campaign = store
            .create_campaign(NewCampaign::named(name))
            .await
            .unwrap()
            .id;
        let messages = (0..6)
            .map(|i| {
                tracking += 1;
                NewMessage {
                    recipient_id: format!("r{i}@example.com"),
                    tracking_id: tracking,
                    sent_at: sent,
                    links: vec!["https://a.example/".into(), "https://b.example/".into()],
                    honeypot: None,
                }
            })
            .collect();
        store.insert_messages(campaign, messages).await.unwrap();
        campaigns.push(campaign);
    }
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    let t0 = sent + Span::hours(2);
    let mut batch = Vec::new();
    for id in 1..=tracking {
        let at = t0 + Span::minutes(37 * id);
        let ua = [CHROME, GMAIL, SCRIPT, MPP][id as usize % 4];
        batch.push(event(EventKind::Open, id, None, at, ua));
        batch.push(event(EventKind::Open, id, None, at + Span::hours(3), ua));
        if id % 3 != 0 {
            batch.push(event(
                EventKind::Click,
                id,
                Some(1),
                at + Span::minutes(5),
                ua,
            ));
        }
        if id % 4 == 1 {
            // Two links within a second: a burst, which relabels the first click.
            let at = at + Span::minutes(9);
            batch.push(event(EventKind::Click, id, Some(1), at, CHROME));
            batch.push(event(
                EventKind::Click,
                id,
                Some(2),
                at + Span::milliseconds(300),
                CHROME,
            ));
        }
    }
    // In several group commits, like the writer.
    for chunk in batch.chunks(7) {
        store
            .record_events(chunk.to_vec().into(), classifier.clone())
            .await
            .unwrap();
    }
    assert_rollups_match_a_rebuild(&store).await;
    let stats = store.campaign_stats(campaigns[0]).await.unwrap();
    assert_eq!(stats.sent, 6);
    assert_eq!(stats.opens.unique, 6);
    assert_eq!(stats.opens.total, 12);

    // As if older rules had called every event a reader's: reclassify moves them back.
    store
        .write(|c| {
            in_tx(c, |c| {
                c.execute_batch("UPDATE events SET class = 'human', reasons = ''")?;
                rollups::rebuild(c)
            })
        })
        .await
        .unwrap();
    let internal = Internal {
        recipients: vec!["@example.com".into()],
        networks: Vec::new(),
    };
    let changed = store
        .reclassify(
            None,
            Arc::new(Classifier::builtin(internal)),
            Arc::new(|_, _| {}),
        )
        .await
        .unwrap();
    assert!(changed.changed > 0);
    assert_rollups_match_a_rebuild(&store).await;

    let erased = store
        .erase_recipient("r1@example.com".into())
        .await
        .unwrap();
    assert_eq!(erased.messages, 2);
    assert_rollups_match_a_rebuild(&store).await;
    let stats = store.campaign_stats(campaigns[0]).await.unwrap();
    assert_eq!(stats.sent, 5);
    assert_eq!(stats.opens.unique, 5);
}

mod paging {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    type Fixture = (
        tokio::runtime::Runtime,
        Arc<dyn Store>,
        Option<tempfile::TempDir>,
    );

    /// One database of 300 events in two campaigns, shared by every case; one per engine.
    fn fixture(postgres: bool) -> &'static Fixture {
        static SQLITE: OnceLock<Fixture> = OnceLock::new();
        static POSTGRES: OnceLock<Fixture> = OnceLock::new();
        (if postgres { &POSTGRES } else { &SQLITE }).get_or_init(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let (store, dir) = fresh_store(postgres);
            rt.block_on(async {
                let classifier = Arc::new(Classifier::builtin(Internal::default()));
                let sent = Utc::now() - Span::hours(3);
                for (c, name) in ["A", "B"].iter().enumerate() {
                    let id = store
                        .create_campaign(NewCampaign::named(name))
                        .await
                        .unwrap()
                        .id;
                    let messages = (0..30)
                        .map(|i| NewMessage {
                            recipient_id: format!("{name}{i}"),
                            tracking_id: (c as i64) * 100 + i + 1,
                            sent_at: sent,
                            links: vec!["https://a.example/".into()],
                            honeypot: None,
                        })
                        .collect();
                    store.insert_messages(id, messages).await.unwrap();
                }
                let batch: Vec<NewEvent> = (0..300)
                    .map(|i| {
                        let tracking = if i % 2 == 0 { 1 + i % 30 } else { 101 + i % 30 };
                        event(
                            EventKind::Open,
                            tracking,
                            None,
                            sent + Span::seconds(i),
                            CHROME,
                        )
                    })
                    .collect();
                for chunk in batch.chunks(17) {
                    store
                        .record_events(chunk.to_vec().into(), classifier.clone())
                        .await
                        .unwrap();
                }
            });
            (rt, store, dir)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn paging_by_cursor_sees_every_event_once_in_order(
            limits in prop::collection::vec(1usize..60, 1..40),
            campaign in prop::option::of((1i64..=2).prop_map(CampaignId)),
            postgres in any::<bool>(),
        ) {
            let (rt, store, _) = fixture(postgres);
            let all: Vec<EventId> = rt
                .block_on(store.events(EventQuery { campaign, after: EventId(0), limit: 10_000 }))
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            prop_assert_eq!(all.len(), if campaign.is_some() { 150 } else { 300 });
            let mut seen = Vec::new();
            let mut after = EventId(0);
            for limit in limits.iter().cycle().take(1_000) {
                let page = rt
                    .block_on(store.events(EventQuery { campaign, after, limit: *limit }))
                    .unwrap();
                prop_assert!(page.len() <= *limit);
                if let Some(last) = page.last() {
                    after = last.id;
                }
                let done = page.len() < *limit;
                seen.extend(page.iter().map(|e| e.id));
                if done {
                    break;
                }
            }
            prop_assert_eq!(seen, all);
        }
    }
}

/// The writer classifies from each message's history summary (`messages.history`); `reclassify`
/// from the whole event log. Whatever the order and spacing of hits (bursts, duplicates, events
/// older than the summary's cutoff, batches of any size), they must agree on every event, and the
/// rollups must equal a rebuild.
mod summaries {
    use super::*;
    use proptest::prelude::*;

    /// Steps of the clock between hits: within a burst, within and beyond the duplicate window,
    /// beyond the summary's horizon, and backwards (a late or replayed hit).
    const STEPS_MS: [i64; 9] = [
        300, 1_500, 2_500, 59_000, 61_000, 130_000, 3_600_000, -10_000, -200_000,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn the_writer_decides_from_its_summaries_as_reclassify_does_from_the_log(
            hits in prop::collection::vec((0i64..3, 0u16..4, 0usize..4, 0usize..STEPS_MS.len()), 1..70),
            chunk in 1usize..9,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let (store, _) = SqliteStore::open(&dir.path().join("s.db"), false).unwrap();
            rt.block_on(async {
                let sent = Utc::now() - Span::days(3);
                let campaign = store.create_campaign(NewCampaign::named("S")).await.unwrap().id;
                let messages = (1..=3)
                    .map(|i| NewMessage {
                        recipient_id: format!("r{i}@example.net"),
                        tracking_id: i,
                        sent_at: sent,
                        links: vec!["https://a.example/".into(), "https://b.example/".into(),
                                    "https://c.example/".into()],
                        honeypot: None,
                    })
                    .collect();
                store.insert_messages(campaign, messages).await.unwrap();
                let classifier = Arc::new(Classifier::builtin(Internal::default()));
                let mut at = sent + Span::hours(1);
                let batch: Vec<NewEvent> = hits
                    .iter()
                    .map(|&(message, link, ua, step)| {
                        at += Span::milliseconds(STEPS_MS[step]);
                        let (kind, link) = match link {
                            0 => (EventKind::Open, None),
                            n => (EventKind::Click, Some(n)),
                        };
                        event(kind, message + 1, link, at, [CHROME, GMAIL, SCRIPT, MPP][ua])
                    })
                    .collect();
                for events in batch.chunks(chunk) {
                    store.record_events(events.to_vec().into(), classifier.clone()).await.unwrap();
                }
                assert_eq!(stored_as_reclassify_would(&store, classifier).await, 3);
            });
        }
    }

    /// Asserts that the rollups match a rebuild from the log, that every message's summary agrees
    /// with its events, and that `reclassify` changes nothing; returns how many summaries were
    /// checked.
    async fn stored_as_reclassify_would(store: &SqliteStore, classifier: Arc<Classifier>) -> u64 {
        assert_rollups_match_a_rebuild(store).await;
        let check = store.check_rollups(false).await.unwrap();
        assert_eq!(check.summaries_wrong, Vec::<MessageId>::new());
        let changed = store
            .reclassify(None, classifier, Arc::new(|_, _| {}))
            .await
            .unwrap()
            .changed;
        assert_eq!(changed, 0, "reclassify changed stored events");
        check.summaries_checked
    }

    /// Thousands of hits on one message in one batch (a hot message under load): the summary is
    /// compacted inside the batch, and still every decision is the one `reclassify` makes from
    /// the log, bursts included.
    #[test]
    fn a_batch_of_thousands_of_hits_on_one_message_decides_as_reclassify_does() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = SqliteStore::open(&dir.path().join("s.db"), false).unwrap();
        let checked = rt.block_on(async {
            let sent = Utc::now() - Span::days(3);
            let campaign = store
                .create_campaign(NewCampaign::named("Hot"))
                .await
                .unwrap()
                .id;
            let message = NewMessage {
                recipient_id: "hot@example.net".into(),
                tracking_id: 1,
                sent_at: sent,
                links: vec!["https://a.example/".into(), "https://b.example/".into()],
                honeypot: None,
            };
            store
                .insert_messages(campaign, vec![message])
                .await
                .unwrap();
            let classifier = Arc::new(Classifier::builtin(Internal::default()));
            let t0 = sent + Span::hours(1);
            // Opens every 7 ms; a reader's click on link 1 every 0.7 s, on link 2 every 3.1 s
            // (bursts when they meet), for 3,000 hits.
            let batch: Vec<NewEvent> = (0..3_000i64)
                .map(|i| {
                    let at = t0 + Span::milliseconds(7 * i);
                    let (kind, link) = match i {
                        i if i % 100 == 0 => (EventKind::Click, Some(1)),
                        i if i % 443 == 0 => (EventKind::Click, Some(2)),
                        _ => (EventKind::Open, None),
                    };
                    event(kind, 1, link, at, if i % 5 == 0 { MPP } else { CHROME })
                })
                .collect();
            for events in batch.chunks(1_500) {
                store
                    .record_events(events.to_vec().into(), classifier.clone())
                    .await
                    .unwrap();
            }
            stored_as_reclassify_would(&store, classifier).await
        });
        assert_eq!(checked, 1);
    }
}

/// A row whose class this version does not know (a hand edit, a newer version's) is reported as
/// what it is, never counted as a reader's event.
#[tokio::test]
async fn a_damaged_class_is_an_error_not_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open(&dir.path().join("t.db"), false).unwrap();
    let campaign = store
        .create_campaign(NewCampaign::named("Damaged"))
        .await
        .unwrap()
        .id;
    let message = NewMessage {
        recipient_id: "r@example.com".into(),
        tracking_id: 1,
        sent_at: Utc::now() - Span::hours(1),
        links: Vec::new(),
        honeypot: None,
    };
    store
        .insert_messages(campaign, vec![message])
        .await
        .unwrap();
    let classifier = Arc::new(Classifier::builtin(Internal::default()));
    let hit = event(EventKind::Open, 1, None, Utc::now(), CHROME);
    store
        .record_events(Arc::from(vec![hit]), classifier.clone())
        .await
        .unwrap();
    store
        .write(|c| c.execute("UPDATE events SET class = 'reader'", params![]))
        .await
        .unwrap();
    let err = store
        .reclassify(None, classifier, Arc::new(|_, _| {}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("class 'reader'"), "{err}");
}
