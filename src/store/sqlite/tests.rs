//! The rollups the writer keeps incrementally must equal the ones rebuilt from the event log,
//! after new events, burst relabelling, reclassification and erasure alike.

use super::*;
use crate::classify::Internal;
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
    }
}

fn dump(c: &Connection) -> Vec<String> {
    let campaigns: Vec<i64> = c
        .prepare("SELECT id FROM campaigns ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    campaigns
        .into_iter()
        .flat_map(|id| rollups::dump(c, id).unwrap())
        .collect()
}

fn assert_rollups_match_a_rebuild(store: &SqliteStore) {
    let mut conn = store.writer.lock().unwrap();
    let kept = dump(&conn);
    let tx = conn.transaction().unwrap();
    rollups::rebuild(&tx).unwrap();
    let rebuilt = dump(&tx);
    tx.rollback().unwrap();
    assert!(!kept.is_empty());
    assert_eq!(kept, rebuilt);
}

#[tokio::test]
async fn incremental_rollups_equal_a_rebuild_from_the_event_log() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open(&dir.path().join("t.db"), false).unwrap();
    let sent = Utc::now() - Span::hours(30);
    let mut tracking = 0;
    let mut campaigns = Vec::new();
    for name in ["A", "B"] {
        let campaign = store.create_campaign(name, None).await.unwrap().id;
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
            .record_events(chunk.to_vec(), classifier.clone())
            .await
            .unwrap();
    }
    assert_rollups_match_a_rebuild(&store);
    let stats = store.campaign_stats(campaigns[0]).await.unwrap();
    assert_eq!(stats.sent, 6);
    assert_eq!(stats.opens.unique, 6);
    assert_eq!(stats.opens.total, 12);

    // As if older rules had called every event a reader's: reclassify moves them back.
    {
        let conn = store.writer.lock().unwrap();
        conn.execute_batch("UPDATE events SET class = 'human', reasons = ''")
            .unwrap();
        rollups::rebuild(&conn).unwrap();
    }
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
    assert_rollups_match_a_rebuild(&store);

    let erased = store
        .erase_recipient("r1@example.com".into())
        .await
        .unwrap();
    assert_eq!(erased.messages, 2);
    assert_rollups_match_a_rebuild(&store);
    let stats = store.campaign_stats(campaigns[0]).await.unwrap();
    assert_eq!(stats.sent, 5);
    assert_eq!(stats.opens.unique, 5);
}
