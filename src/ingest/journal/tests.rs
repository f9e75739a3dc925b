use super::*;
use crate::classify::{INTERNAL_NETWORK_TAG, ranges};
use crate::store::{EventKind, WithoutConsent};
use chrono::DateTime;

fn event(tracking_id: i64) -> NewEvent {
    NewEvent {
        kind: EventKind::Click,
        tracking_id,
        link_no: Some(3),
        received_at: DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(),
        method: "HEAD",
        user_agent: Some("Mozilla/5.0 \"quoted\" \u{fc}\n".into()),
        keep_user_agent: true,
        client_ip: Some("203.0.113.0".into()),
        headers: Some(r#"{"via":"1.1 proxy"}"#.into()),
        ip_tags: vec!["apple-mpp-egress", INTERNAL_NETWORK_TAG],
        failed_check: true,
        country: Some("DE".into()),
        region: Some("BE".into()),
        without_consent: Some(WithoutConsent::None),
    }
}

/// Every `Option` empty, every flag off.
fn bare(tracking_id: i64) -> NewEvent {
    let mut e = event(tracking_id);
    (e.kind, e.link_no, e.method) = (EventKind::Open, None, "GET");
    (e.keep_user_agent, e.failed_check, e.without_consent) = (false, false, None);
    (e.user_agent, e.client_ip, e.headers, e.country, e.region) = Default::default();
    e.ip_tags.clear();
    e
}

fn batch(tracking_id: i64) -> Vec<EncodedEvent> {
    vec![EncodedEvent::new(&bare(tracking_id))]
}

fn record_of(events: &[EncodedEvent]) -> Vec<u8> {
    frame(record::payload(events)).unwrap()
}

/// Bytes of one record of `batch(n)` for a one-digit n.
fn record_len() -> u64 {
    record_of(&batch(0)).len() as u64
}

fn at(segment: u64, offset: u64) -> Position {
    Position { segment, offset }
}

fn read(spool: &Journal, pos: Position, max_events: usize) -> (Vec<i64>, Position) {
    let (events, next) = spool.read_from(pos, max_events).unwrap();
    (events.iter().map(|e| e.tracking_id).collect(), next)
}

fn ids(spool: &Journal, pos: Position) -> Vec<i64> {
    read(spool, pos, usize::MAX).0
}

fn files(dir: &Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .map(|e| parse_name(e.unwrap().file_name().to_str().unwrap()).unwrap())
        .collect();
    seqs.sort_unstable();
    seqs
}

fn journal_of(dir: &Path, segment_bytes: u64, n: i64) -> Journal {
    let mut spool = Journal::open_with(dir, segment_bytes).unwrap();
    for id in 1..=n {
        spool.append(&batch(id)).unwrap();
    }
    spool
}

#[test]
fn round_trip_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let sent = [event(1), bare(2)];
    let mut spool = Journal::open(dir.path()).unwrap();
    spool
        .append(&sent.iter().map(EncodedEvent::new).collect::<Vec<_>>())
        .unwrap();
    drop(spool);
    let spool = Journal::open(dir.path()).unwrap();
    let (back, pos) = spool.read_from(spool.start(), 10).unwrap();
    assert_eq!(pos, spool.end());
    assert_eq!(format!("{sent:?}"), format!("{back:?}"));
    let shipped = ranges::known_list("apple-mpp-egress").unwrap();
    assert!(std::ptr::eq(back[0].ip_tags[0], shipped));
}

#[test]
fn an_agent_not_to_be_kept_is_sealed_on_disk_and_read_back_here() {
    let dir = tempfile::tempdir().unwrap();
    let mut hit = event(1);
    hit.keep_user_agent = false;
    let mut spool = Journal::open(dir.path()).unwrap();
    spool.append(&[EncodedEvent::new(&hit)]).unwrap();
    let bytes = fs::read(segment_path(dir.path(), 0)).unwrap();
    for secret in ["Mozilla", "proxy"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    let (back, _) = spool.read_from(spool.start(), 10).unwrap();
    assert_eq!(back[0].user_agent, hit.user_agent);
    assert_eq!(back[0].headers, hit.headers);
}

/// A journal written by a build before the binary records (JSON) is stored after an upgrade.
#[test]
fn an_earlier_builds_json_records_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let json = br#"[{"kind":"click","tracking_id":7,"link_no":2,"received_at":"2023-11-14T22:13:20.123456789Z","method":"PROPFIND","user_agent":"Mozilla/5.0","keep_user_agent":true,"client_ip":"203.0.113.0","headers":null,"ip_tags":["google-image-proxy","no-longer-shipped","internal-network"],"failed_check":false,"country":"DE","region":null}]"#;
    let mut old = frame(json.to_vec()).unwrap();
    old.extend(record_of(&batch(8)));
    fs::write(dir.path().join(SEG0), &old).unwrap();
    let spool = Journal::open(dir.path()).unwrap();
    let (back, _) = spool.read_from(spool.start(), 10).unwrap();
    assert_eq!(back.len(), 2);
    let e = &back[0];
    assert_eq!(
        (e.kind, e.tracking_id, e.link_no),
        (EventKind::Click, 7, Some(2))
    );
    assert_eq!(e.received_at, event(7).received_at);
    assert_eq!(e.method, "GET", "the tracker only sends GET and HEAD");
    assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert_eq!(e.without_consent, None, "absent in journals before consent");
    assert_eq!(e.ip_tags, ["google-image-proxy", INTERNAL_NETWORK_TAG]);
    assert_eq!(back[1].tracking_id, 8);
}

#[test]
fn a_record_of_an_unknown_format_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut records = record_of(&batch(1));
    records.extend(frame(vec![0x7f, 1, 2]).unwrap());
    fs::write(dir.path().join(SEG0), &records).unwrap();
    let spool = Journal::open(dir.path()).unwrap();
    let err = spool.read_from(spool.start(), 10).unwrap_err().to_string();
    assert!(err.contains("unknown record format 0x7f"), "{err}");
}

#[test]
fn torn_tail_is_truncated_on_reopen_and_appends_go_on() {
    let record = record_of(&batch(9));
    let mut bad_checksum = record.clone();
    *bad_checksum.last_mut().unwrap() ^= 1;
    let half = record[..record.len() / 2].to_vec();
    for tail in [half, record[..5].to_vec(), bad_checksum, vec![0; 100]] {
        let dir = tempfile::tempdir().unwrap();
        let end = journal_of(dir.path(), DEFAULT_SEGMENT_BYTES, 2).end();
        let path = segment_path(dir.path(), 0);
        fs::write(&path, [fs::read(&path).unwrap(), tail.clone()].concat()).unwrap();
        let mut spool = Journal::open(dir.path()).unwrap();
        assert_eq!(spool.torn_tail_bytes(), tail.len() as u64);
        assert_eq!(spool.end(), end);
        assert_eq!(fs::metadata(&path).unwrap().len(), end.offset);
        spool.append(&batch(3)).unwrap();
        drop(spool);
        let spool = Journal::open(dir.path()).unwrap();
        assert_eq!(spool.torn_tail_bytes(), 0);
        assert_eq!(ids(&spool, spool.start()), [1, 2, 3]);
    }
}

const SEG0: &str = "00000000000000000000.journal";

#[test]
fn bad_record_before_the_tail_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    drop(journal_of(dir.path(), DEFAULT_SEGMENT_BYTES, 3));
    let path = segment_path(dir.path(), 0);
    let mut bytes = fs::read(&path).unwrap();
    bytes[record_len() as usize + 10] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = Journal::open(dir.path()).err().unwrap().to_string();
    let at = format!("{SEG0}: offset {}: checksum", record_len());
    assert!(err.contains(&at), "{err}");

    // A torn record is lost data too when it is not in the last segment.
    let dir = tempfile::tempdir().unwrap();
    drop(journal_of(dir.path(), 1, 2));
    let path = segment_path(dir.path(), 0);
    fs::write(&path, &fs::read(&path).unwrap()[..5]).unwrap();
    let err = Journal::open(dir.path()).err().unwrap().to_string();
    assert!(
        err.contains(&format!("{SEG0}: offset 0: incomplete")),
        "{err}"
    );
}

#[test]
fn segments_roll_over_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let spool = journal_of(dir.path(), 2 * record_len(), 5);
    assert_eq!(files(dir.path()), [0, 1, 2]);
    let (first, pos) = read(&spool, spool.start(), 3);
    assert_eq!((first, pos), (vec![1, 2, 3], at(1, record_len())));
    assert_eq!(read(&spool, pos, 3), (vec![4, 5], spool.end()));
}

#[test]
fn release_deletes_only_consumed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = journal_of(dir.path(), 2 * record_len(), 5);
    let (_, mid) = spool.read_from(spool.start(), 3).unwrap();
    assert_eq!(mid, at(1, record_len()));
    spool.release(mid, 0).unwrap();
    assert_eq!(files(dir.path()), [1, 2]);
    assert_eq!(ids(&spool, mid), [4, 5]);
    assert_eq!(spool.pending_bytes(mid), 2 * record_len());

    let (_, end) = spool.read_from(mid, 10).unwrap();
    spool.release(end, 0).unwrap();
    assert_eq!(files(dir.path()), [3]);
    assert!(spool.is_empty());
    // The caller's recorded position now names a deleted segment.
    spool.append(&batch(6)).unwrap();
    assert_eq!(ids(&spool, end), [6]);
    assert_eq!(spool.pending_bytes(end), record_len());
}

#[test]
fn positions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let spool = journal_of(dir.path(), 2 * record_len(), 3);
    let (_, pos) = spool.read_from(spool.start(), 1).unwrap();
    let end = spool.end();
    drop(spool);
    let spool = Journal::open_with(dir.path(), 2 * record_len()).unwrap();
    assert_eq!(spool.end(), end);
    assert_eq!(ids(&spool, pos), [2, 3]);
    assert!(spool.read_from(at(end.segment, end.offset + 1), 1).is_err());
    assert!(spool.read_from(at(9, 0), 1).is_err());
}

#[test]
fn appends_during_a_replay_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = journal_of(dir.path(), 2 * record_len(), 1);
    let mut pos = spool.start();
    for id in 2..=4 {
        let (seen, next) = read(&spool, pos, 10);
        assert_eq!(seen, [id - 1]);
        assert_eq!(read(&spool, next, 10), (vec![], next));
        spool.append(&batch(id)).unwrap();
        pos = next;
    }
    assert_eq!(ids(&spool, pos), [4]);
    assert_eq!(files(dir.path()), [0, 1]);
}
