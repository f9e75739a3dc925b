//! The event journal's file layer: every tracking event is appended here before it is answered,
//! and the store worker applies it to the database in order. Exactly-once because the worker
//! stores each chunk and the position it reaches in one database transaction, and releases the
//! journal up to a position only after the database has recorded it.
//!
//! A directory of segments `NNNNNNNNNNNNNNNNNNNN.journal` (a 20-digit sequence number, rising),
//! each a run of records: payload length (u32 LE), CRC32 of the payload (u32 LE), payload (one
//! appended group of events: see [`record`]). Builds before the journal called the same files the
//! spool (`.spool`); they are taken over as they are.

mod record;

pub use record::EncodedEvent;

use crate::store::NewEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
const HEADER: u64 = 8;

/// Where the next unread record starts. Positions order as the records do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// The writer's end: appends, and deletes what the database has recorded. Readers take a
/// [`View`], so that reading a chunk never holds up an append.
pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    /// fdatasync every append (power-loss safety); without it an append is safe from a crash of
    /// the process once `write` returns (the data is in the operating system's page cache).
    fsync: bool,
    /// Sequence number → length of its intact records. The last segment is the one appended to.
    segments: BTreeMap<u64, u64>,
    file: File,
    /// A failed append may have left part of its record past the end; it must go before the next
    /// one is written, or it would become a bad record in the middle.
    dirty: bool,
    torn_tail_bytes: u64,
}

impl Journal {
    pub fn open(dir: &Path) -> io::Result<Journal> {
        Journal::open_with(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// A new segment is started when the next record would take the current one past
    /// `segment_bytes` (a record larger than that gets a segment of its own).
    pub fn open_with(dir: &Path, segment_bytes: u64) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = parse_name(name) {
                seqs.push(seq);
            } else if let Some(seq) = name.strip_suffix(".spool").and_then(parse_digits) {
                // A spool segment of an earlier build: same records, new name.
                fs::rename(dir.join(name), segment_path(dir, seq))?;
                seqs.push(seq);
            }
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
        Ok(Journal {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            file,
            fsync: false,
            dirty: false,
            torn_tail_bytes,
        })
    }

    /// `--fsync`: see [`Journal::fsync`](struct@Journal).
    pub fn set_fsync(&mut self, fsync: bool) {
        self.fsync = fsync;
    }

    /// What is on disk now, for reading without holding the journal.
    pub fn view(&self) -> View {
        View {
            dir: self.dir.clone(),
            segments: self.segments.clone(),
        }
    }

    /// Events in the records from `from` to the end (read from disk: for start-up).
    pub fn count_events(&self, from: Position) -> io::Result<u64> {
        let view = self.view();
        let (mut pos, mut n) = (self.check(from)?, 0);
        loop {
            let (events, next) = view.read_from(pos, 4096)?;
            if next == pos {
                return Ok(n);
            }
            (pos, n) = (next, n + events.len() as u64);
        }
    }

    /// Bytes of an incomplete record cut off the end at open: a crash interrupted an append, which
    /// had therefore not been acknowledged.
    pub fn torn_tail_bytes(&self) -> u64 {
        self.torn_tail_bytes
    }

    /// Appends one group as one record: the caller may acknowledge the events when this returns
    /// (with `fsync`, they survive a power loss too).
    pub fn append<'e>(
        &mut self,
        events: impl IntoIterator<Item = &'e EncodedEvent>,
    ) -> io::Result<u64> {
        let mut events = events.into_iter().peekable();
        if events.peek().is_none() {
            return Ok(0);
        }
        let record = frame(record::payload(events))?;
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
        let written = write_at(&self.file, &record, end).and_then(|()| match self.fsync {
            true => self.file.sync_data(),
            false => Ok(()),
        });
        if let Err(e) = written {
            self.dirty = self.file.set_len(end).is_err();
            return Err(e);
        }
        self.segments.insert(seq, end + record.len() as u64);
        Ok(record.len() as u64)
    }

    /// See [`View::read_from`].
    pub fn read_from(
        &self,
        pos: Position,
        max_events: usize,
    ) -> io::Result<(Vec<NewEvent>, Position)> {
        self.view().read_from(pos, max_events)
    }

    /// The first record still on disk.
    pub fn start(&self) -> Position {
        let (&segment, _) = self
            .segments
            .first_key_value()
            .expect("a journal has a segment");
        Position { segment, offset: 0 }
    }

    /// Where the next append goes (unless it starts a new segment).
    pub fn end(&self) -> Position {
        let (&segment, &offset) = self
            .segments
            .last_key_value()
            .expect("a journal has a segment");
        Position { segment, offset }
    }

    /// Nothing on disk, read or not (an idle journal, or one fully stored and released).
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

    /// Deletes the segments wholly before `upto`, which the database has recorded as stored.
    /// When that is everything and the current segment holds at least `rotate_from` bytes, it is
    /// closed first so that it can go too (a new file per store transaction would cost more than
    /// the deletion gives).
    pub fn release(&mut self, upto: Position, rotate_from: u64) -> io::Result<()> {
        let upto = self.check(upto)?;
        let end = self.end();
        if upto >= end && end.offset > 0 && end.offset >= rotate_from {
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
                let msg = format!("{pos:?} is past the end of the journal, {:?}", self.end());
                Err(io::Error::new(io::ErrorKind::InvalidInput, msg))
            }
        }
    }

    fn cut_partial_write(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.set_len(self.end().offset)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// The journal's segments as they were when taken: reads stop at that end, and a concurrent
/// append is read by the next view.
pub struct View {
    dir: PathBuf,
    segments: BTreeMap<u64, u64>,
}

impl View {
    /// The events of the records from `pos` until at least `max_events` (whole records) or the
    /// end, and the position after them. A position in a segment already released reads from the
    /// first one left: everything before that was recorded by the caller.
    pub fn read_from(
        &self,
        pos: Position,
        max_events: usize,
    ) -> io::Result<(Vec<NewEvent>, Position)> {
        let mut pos = match self.segments.first_key_value() {
            Some((&first, _)) if pos.segment < first => Position {
                segment: first,
                offset: 0,
            },
            _ => pos,
        };
        match self.segments.get(&pos.segment) {
            Some(&len) if pos.offset <= len => {}
            _ => {
                let msg = format!("{pos:?} is past the end of the journal");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
            }
        }
        let mut events = Vec::new();
        let mut reader: Option<(u64, BufReader<File>)> = None;
        loop {
            pos = self.past_ended_segments(pos);
            let len = self.segments[&pos.segment];
            if events.len() >= max_events || pos.offset == len {
                return Ok((events, pos));
            }
            let path = segment_path(&self.dir, pos.segment);
            if reader.as_ref().is_none_or(|(seq, _)| *seq != pos.segment) {
                let mut file = File::open(&path)?;
                file.seek(SeekFrom::Start(pos.offset))?;
                reader = Some((pos.segment, BufReader::with_capacity(1 << 16, file)));
            }
            let (_, r) = reader.as_mut().expect("opened above");
            let payload = read_record(r, pos.offset, len)?
                .map_err(|(why, _)| corrupt(&path, pos.offset, why))?;
            let group = record::decode(&payload).map_err(|why| corrupt(&path, pos.offset, &why))?;
            events.extend(group);
            pos.offset += HEADER + payload.len() as u64;
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
}

/// A record: its header, then `payload`.
fn frame(payload: Vec<u8>) -> io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "group too large for the journal",
        )
    })?;
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
    let msg = format!("journal {}: offset {offset}: {why}", path.display());
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.journal"))
}

fn parse_name(name: &str) -> Option<u64> {
    parse_digits(name.strip_suffix(".journal")?)
}

fn parse_digits(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One system call where a seek and a write would take two.
#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn write_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::Write;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
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
mod tests;
