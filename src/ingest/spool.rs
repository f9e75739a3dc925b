//! The local spool: while the database cannot be written, tracking events are appended here, and
//! replayed once it is back. This is only the file layer. Replay is exactly-once because the caller
//! stores each replayed batch and the position reached in one database transaction, and releases
//! the spool up to a position only after the database has recorded it.
//!
//! A directory of segments `NNNNNNNNNNNNNNNNNNNN.spool` (a 20-digit sequence number, rising), each
//! a run of records: payload length (u32 LE), CRC32 of the payload (u32 LE), payload (the JSON of
//! one appended batch, a `Vec<SpooledEvent>`).

use crate::classify::{INTERNAL_NETWORK_TAG, ranges};
use crate::store::{EventKind, NewEvent, WithoutConsent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
const HEADER: u64 = 8;

/// Where the next unread record starts. Positions order as the records do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// [`NewEvent`] with owned strings, as written to the spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpooledEvent {
    pub kind: EventKind,
    pub tracking_id: i64,
    pub link_no: Option<u16>,
    pub received_at: DateTime<Utc>,
    pub method: String,
    pub user_agent: Option<String>,
    pub keep_user_agent: bool,
    pub client_ip: Option<String>,
    pub headers: Option<String>,
    pub ip_tags: Vec<String>,
    pub failed_check: bool,
    pub country: Option<String>,
    pub region: Option<String>,
    /// Written by builds that know consent; older spools have none to check.
    #[serde(default)]
    pub without_consent: Option<WithoutConsent>,
}

impl From<&NewEvent> for SpooledEvent {
    fn from(e: &NewEvent) -> SpooledEvent {
        SpooledEvent {
            kind: e.kind,
            tracking_id: e.tracking_id,
            link_no: e.link_no,
            received_at: e.received_at,
            method: e.method.to_string(),
            user_agent: e.user_agent.clone(),
            keep_user_agent: e.keep_user_agent,
            client_ip: e.client_ip.clone(),
            headers: e.headers.clone(),
            ip_tags: e.ip_tags.iter().map(|t| t.to_string()).collect(),
            failed_check: e.failed_check,
            country: e.country.clone(),
            region: e.region.clone(),
            without_consent: e.without_consent,
        }
    }
}

impl SpooledEvent {
    /// The `&'static str` fields come back as the tracker's own constants rather than leaked
    /// strings: the tracker only sends GET and HEAD, and an address list this build no longer
    /// ships (the spool may outlive an upgrade) cannot be tested for by the rules anyway.
    pub fn into_event(self) -> NewEvent {
        NewEvent {
            kind: self.kind,
            tracking_id: self.tracking_id,
            link_no: self.link_no,
            received_at: self.received_at,
            method: if self.method == "HEAD" { "HEAD" } else { "GET" },
            user_agent: self.user_agent,
            keep_user_agent: self.keep_user_agent,
            client_ip: self.client_ip,
            headers: self.headers,
            ip_tags: self
                .ip_tags
                .iter()
                .filter_map(|t| match t.as_str() {
                    INTERNAL_NETWORK_TAG => Some(INTERNAL_NETWORK_TAG),
                    name => ranges::known_list(name),
                })
                .collect(),
            failed_check: self.failed_check,
            country: self.country,
            region: self.region,
            without_consent: self.without_consent,
        }
    }
}

pub struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    /// Sequence number → length of its intact records. The last segment is the one appended to.
    segments: BTreeMap<u64, u64>,
    file: File,
    /// A failed append may have left part of its record past the end; it must go before the next
    /// one is written, or it would become a bad record in the middle.
    dirty: bool,
    torn_tail_bytes: u64,
}

impl Spool {
    pub fn open(dir: &Path) -> io::Result<Spool> {
        Spool::open_with(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// A new segment is started when the next record would take the current one past
    /// `segment_bytes` (a record larger than that gets a segment of its own).
    pub fn open_with(dir: &Path, segment_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir)? {
            seqs.extend(entry?.file_name().to_str().and_then(parse_name));
        }
        seqs.sort_unstable();
        let (mut segments, mut torn_tail_bytes) = (BTreeMap::new(), 0);
        for (i, &seq) in seqs.iter().enumerate() {
            let path = segment_path(dir, seq);
            let (len, size) = scan(&path, i + 1 == seqs.len())?;
            if len < size {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(len)?;
                file.sync_all()?;
                torn_tail_bytes = size - len;
            }
            segments.insert(seq, len);
        }
        let file = match segments.last_key_value() {
            Some((&last, _)) => OpenOptions::new()
                .write(true)
                .open(segment_path(dir, last))?,
            None => {
                segments.insert(0, 0);
                create_segment(dir, 0)?
            }
        };
        Ok(Spool {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            file,
            dirty: false,
            torn_tail_bytes,
        })
    }

    /// Bytes of an incomplete record cut off the end at open: a crash interrupted an append, which
    /// had therefore not been acknowledged.
    pub fn torn_tail_bytes(&self) -> u64 {
        self.torn_tail_bytes
    }

    /// Appends one batch as one record, durably: the caller may acknowledge the events when this
    /// returns.
    pub fn append(&mut self, events: &[SpooledEvent]) -> io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let record = encode(events)?;
        let Position {
            segment: mut seq,
            offset: mut end,
        } = self.end();
        self.cut_partial_write()?;
        if end > 0 && end + record.len() as u64 > self.segment_bytes {
            self.file = create_segment(&self.dir, seq + 1)?;
            (seq, end) = (seq + 1, 0);
            self.segments.insert(seq, 0);
        }
        let written = self
            .file
            .seek(SeekFrom::Start(end))
            .and_then(|_| self.file.write_all(&record))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.dirty = self.file.set_len(end).is_err();
            return Err(e);
        }
        self.segments.insert(seq, end + record.len() as u64);
        Ok(())
    }

    /// The events of up to `max_records` records from `pos`, and the position after them.
    ///
    /// Reads stop at the end as it was when called: a concurrent append is read by the next call,
    /// from the returned position. A position in a segment already released reads from
    /// [`start`](Self::start): everything before that was recorded by the caller.
    pub fn read_from(
        &self,
        pos: Position,
        max_records: usize,
    ) -> io::Result<(Vec<SpooledEvent>, Position)> {
        let mut pos = self.check(pos)?;
        let (mut events, mut records) = (Vec::new(), 0);
        let mut reader: Option<(u64, BufReader<File>)> = None;
        loop {
            pos = self.past_ended_segments(pos);
            let len = self.segments[&pos.segment];
            if records == max_records || pos.offset == len {
                return Ok((events, pos));
            }
            let path = segment_path(&self.dir, pos.segment);
            if reader.as_ref().is_none_or(|(seq, _)| *seq != pos.segment) {
                let mut file = File::open(&path)?;
                file.seek(SeekFrom::Start(pos.offset))?;
                reader = Some((pos.segment, BufReader::new(file)));
            }
            let (_, r) = reader.as_mut().expect("opened above");
            let payload = read_record(r, pos.offset, len)?
                .map_err(|(why, _)| corrupt(&path, pos.offset, why))?;
            let batch: Vec<SpooledEvent> = serde_json::from_slice(&payload)
                .map_err(|e| corrupt(&path, pos.offset, &e.to_string()))?;
            events.extend(batch);
            pos.offset += HEADER + payload.len() as u64;
            records += 1;
        }
    }

    /// The first record still on disk.
    pub fn start(&self) -> Position {
        let (&segment, _) = self
            .segments
            .first_key_value()
            .expect("a spool has a segment");
        Position { segment, offset: 0 }
    }

    /// Where the next append goes (unless it starts a new segment).
    pub fn end(&self) -> Position {
        let (&segment, &offset) = self
            .segments
            .last_key_value()
            .expect("a spool has a segment");
        Position { segment, offset }
    }

    /// Nothing on disk, read or not (an idle spool, or one fully replayed and released).
    pub fn is_empty(&self) -> bool {
        self.segments.values().all(|&len| len == 0)
    }

    /// Bytes (framing included) from `from` to the end.
    pub fn pending_bytes(&self, from: Position) -> u64 {
        let rest: u64 = self
            .segments
            .range(from.segment..)
            .map(|(_, len)| len)
            .sum();
        rest - from
            .offset
            .min(self.segments.get(&from.segment).copied().unwrap_or(0))
    }

    /// Deletes the segments wholly before `upto`, which the database has recorded as replayed.
    /// When that is everything, the current segment is closed first so that it can go too.
    pub fn release(&mut self, upto: Position) -> io::Result<()> {
        let upto = self.check(upto)?;
        let end = self.end();
        if upto >= end && end.offset > 0 {
            self.cut_partial_write()?;
            self.file = create_segment(&self.dir, end.segment + 1)?;
            self.segments.insert(end.segment + 1, 0);
        }
        let current = self.end().segment;
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|&(&seq, &len)| {
                seq != current
                    && (seq < upto.segment || (seq == upto.segment && upto.offset >= len))
            })
            .map(|(&seq, _)| seq)
            .collect();
        for seq in &done {
            match fs::remove_file(segment_path(&self.dir, *seq)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => self.segments.remove(seq),
            };
        }
        // Not needed for exactly-once (the caller reads from its own recorded position), but a
        // deletion lost in a power cut would bring back gigabytes.
        match done.is_empty() {
            true => Ok(()),
            false => sync_dir(&self.dir),
        }
    }

    fn check(&self, pos: Position) -> io::Result<Position> {
        if pos.segment < self.start().segment {
            return Ok(self.start());
        }
        match self.segments.get(&pos.segment) {
            Some(&len) if pos.offset <= len => Ok(pos),
            _ => {
                let msg = format!("{pos:?} is past the end of the spool, {:?}", self.end());
                Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
            }
        }
    }

    /// So that a position at the end of a segment that is not the last one names no data in it,
    /// and the segment can be released.
    fn past_ended_segments(&self, mut pos: Position) -> Position {
        while pos.offset == self.segments[&pos.segment] {
            match self.segments.range(pos.segment + 1..).next() {
                Some((&segment, _)) => pos = Position { segment, offset: 0 },
                None => break,
            }
        }
        pos
    }

    fn cut_partial_write(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.set_len(self.end().offset)?;
            self.dirty = false;
        }
        Ok(())
    }
}

fn encode(events: &[SpooledEvent]) -> io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(events)?;
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "batch too large to spool"))?;
    let mut record = Vec::with_capacity(HEADER as usize + payload.len());
    record.extend(len.to_le_bytes());
    record.extend(crc32fast::hash(&payload).to_le_bytes());
    record.extend(payload);
    Ok(record)
}

/// The record at `offset` of a segment whose intact part (as far as known) ends at `limit`; or why
/// it is bad and where it claims to end, which is past `limit` when it was cut short.
fn read_record(
    r: &mut impl Read,
    offset: u64,
    limit: u64,
) -> io::Result<Result<Vec<u8>, (&'static str, u64)>> {
    if limit - offset < HEADER {
        return Ok(Err(("incomplete record", offset + HEADER)));
    }
    let mut header = [0; 8];
    r.read_exact(&mut header)?;
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let end = offset + HEADER + u64::from(len);
    if len == 0 {
        // Never written, but a zero-filled tail (a crash after the size grew) reads as one.
        return Ok(Err(("empty record", end)));
    } else if end > limit {
        return Ok(Err(("incomplete record", end)));
    }
    let mut payload = vec![0; len as usize];
    r.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Ok(Err(("checksum mismatch", end)));
    }
    Ok(Ok(payload))
}

/// (length of the intact records, size on disk). Only the last segment may end in a record cut
/// short by a crash mid-append; anywhere else a bad record is lost data, which is an error.
fn scan(path: &Path, last: bool) -> io::Result<(u64, u64)> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let (mut r, mut offset) = (BufReader::new(file), 0);
    while offset < size {
        match read_record(&mut r, offset, size)? {
            Ok(payload) => offset += HEADER + payload.len() as u64,
            Err((_, end)) if last && (end >= size || zeros_from(path, offset)?) => break,
            Err((why, _)) => return Err(corrupt(path, offset, why)),
        }
    }
    Ok((offset, size))
}

fn zeros_from(path: &Path, offset: u64) -> io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = [0; 8192];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(true),
            n if buf[..n].iter().any(|&b| b != 0) => return Ok(false),
            _ => {}
        }
    }
}

fn corrupt(path: &Path, offset: u64, why: &str) -> io::Error {
    let msg = format!("spool {}: offset {offset}: {why}", path.display());
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.spool"))
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".spool")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Not `create_new`: an attempt whose directory sync failed leaves an empty file to take over.
fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let path = segment_path(dir, seq);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    sync_dir(dir)?;
    Ok(file)
}

/// A file's creation or deletion is durable only once its directory is synced.
fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn batch(tracking_id: i64) -> Vec<SpooledEvent> {
        vec![SpooledEvent::from(&bare(tracking_id))]
    }

    /// Bytes of one record of `batch(n)` for a one-digit n.
    fn record_len() -> u64 {
        encode(&batch(0)).unwrap().len() as u64
    }

    fn at(segment: u64, offset: u64) -> Position {
        Position { segment, offset }
    }

    fn read(spool: &Spool, pos: Position, max_records: usize) -> (Vec<i64>, Position) {
        let (events, next) = spool.read_from(pos, max_records).unwrap();
        (events.iter().map(|e| e.tracking_id).collect(), next)
    }

    fn ids(spool: &Spool, pos: Position) -> Vec<i64> {
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

    fn spool_of(dir: &Path, segment_bytes: u64, n: i64) -> Spool {
        let mut spool = Spool::open_with(dir, segment_bytes).unwrap();
        for id in 1..=n {
            spool.append(&batch(id)).unwrap();
        }
        spool
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let sent = [event(1), bare(2)];
        let mut spool = Spool::open(dir.path()).unwrap();
        spool
            .append(&sent.iter().map(SpooledEvent::from).collect::<Vec<_>>())
            .unwrap();
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        let (events, pos) = spool.read_from(spool.start(), 10).unwrap();
        assert_eq!(pos, spool.end());
        let back: Vec<NewEvent> = events.into_iter().map(SpooledEvent::into_event).collect();
        assert_eq!(format!("{sent:?}"), format!("{back:?}"));
    }

    #[test]
    fn into_event_maps_method_and_ip_tags_to_the_static_strs() {
        let mut e = SpooledEvent::from(&event(1));
        assert_eq!(e.clone().into_event().method, "HEAD");
        e.method = "PROPFIND".into();
        let tags = [
            "google-image-proxy",
            "no-longer-shipped",
            INTERNAL_NETWORK_TAG,
        ];
        e.ip_tags = tags.map(String::from).into();
        let back = e.into_event();
        assert_eq!(back.method, "GET");
        assert_eq!(back.ip_tags, ["google-image-proxy", INTERNAL_NETWORK_TAG]);
        let shipped = ranges::known_list("google-image-proxy").unwrap();
        assert!(std::ptr::eq(back.ip_tags[0], shipped));
    }

    #[test]
    fn torn_tail_is_truncated_on_reopen_and_appends_go_on() {
        let record = encode(&batch(9)).unwrap();
        let mut bad_checksum = record.clone();
        *bad_checksum.last_mut().unwrap() ^= 1;
        let half = record[..record.len() / 2].to_vec();
        for tail in [half, record[..5].to_vec(), bad_checksum, vec![0; 100]] {
            let dir = tempfile::tempdir().unwrap();
            let end = spool_of(dir.path(), DEFAULT_SEGMENT_BYTES, 2).end();
            let path = segment_path(dir.path(), 0);
            fs::write(&path, [fs::read(&path).unwrap(), tail.clone()].concat()).unwrap();
            let mut spool = Spool::open(dir.path()).unwrap();
            assert_eq!(spool.torn_tail_bytes(), tail.len() as u64);
            assert_eq!(spool.end(), end);
            assert_eq!(fs::metadata(&path).unwrap().len(), end.offset);
            spool.append(&batch(3)).unwrap();
            drop(spool);
            let spool = Spool::open(dir.path()).unwrap();
            assert_eq!(spool.torn_tail_bytes(), 0);
            assert_eq!(ids(&spool, spool.start()), [1, 2, 3]);
        }
    }

    const SEG0: &str = "00000000000000000000.spool";

    #[test]
    fn bad_record_before_the_tail_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        drop(spool_of(dir.path(), DEFAULT_SEGMENT_BYTES, 3));
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        bytes[record_len() as usize + 10] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = Spool::open(dir.path()).err().unwrap().to_string();
        let at = format!("{SEG0}: offset {}: checksum", record_len());
        assert!(err.contains(&at), "{err}");

        // A torn record is lost data too when it is not in the last segment.
        let dir = tempfile::tempdir().unwrap();
        drop(spool_of(dir.path(), 1, 2));
        let path = segment_path(dir.path(), 0);
        fs::write(&path, &fs::read(&path).unwrap()[..5]).unwrap();
        let err = Spool::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("{SEG0}: offset 0: incomplete")),
            "{err}"
        );
    }

    #[test]
    fn segments_roll_over_and_reads_cross_them() {
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_of(dir.path(), 2 * record_len(), 5);
        assert_eq!(files(dir.path()), [0, 1, 2]);
        let (first, pos) = read(&spool, spool.start(), 3);
        assert_eq!((first, pos), (vec![1, 2, 3], at(1, record_len())));
        assert_eq!(read(&spool, pos, 3), (vec![4, 5], spool.end()));
    }

    #[test]
    fn release_deletes_only_consumed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = spool_of(dir.path(), 2 * record_len(), 5);
        let (_, mid) = spool.read_from(spool.start(), 3).unwrap();
        assert_eq!(mid, at(1, record_len()));
        spool.release(mid).unwrap();
        assert_eq!(files(dir.path()), [1, 2]);
        assert_eq!(ids(&spool, mid), [4, 5]);
        assert_eq!(spool.pending_bytes(mid), 2 * record_len());

        let (_, end) = spool.read_from(mid, 10).unwrap();
        spool.release(end).unwrap();
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
        let spool = spool_of(dir.path(), 2 * record_len(), 3);
        let (_, pos) = spool.read_from(spool.start(), 1).unwrap();
        let end = spool.end();
        drop(spool);
        let spool = Spool::open_with(dir.path(), 2 * record_len()).unwrap();
        assert_eq!(spool.end(), end);
        assert_eq!(ids(&spool, pos), [2, 3]);
        assert!(spool.read_from(at(end.segment, end.offset + 1), 1).is_err());
        assert!(spool.read_from(at(9, 0), 1).is_err());
    }

    #[test]
    fn appends_during_a_replay_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = spool_of(dir.path(), 2 * record_len(), 1);
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
}
