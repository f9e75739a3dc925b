//! The write path: every tracking event is appended to this process's journal before it is
//! answered, and a store worker applies the journal to the database behind it.
//!
//! - [`writer`]: request handlers hold an [`EventSender`]; each hands over its event and waits.
//!   One journal-writer thread takes everything queued, appends it as one record (one `write`,
//!   and with `--fsync` one `fdatasync`), then releases every waiting handler. So an answered
//!   event is on disk (in the page cache: safe from `kill -9`; with `--fsync`, from a power cut).
//! - [`worker`]: one store-worker thread reads the journal in order and stores it in large
//!   transactions, each recording the journal position it reaches, so a crash anywhere resumes
//!   exactly once. Classification, rollups, webhook notices, opt-out and consent happen there.
//!   Reports trail the journal by the worker's lag ([`JournalStatus`]).
//! - [`directory`]: what a request must know before it is answered (does the message exist,
//!   where does the link lead), from a bounded cache or one read on a miss; never a write.
//!
//! Back-pressure: the handlers' queue is bounded (they wait for room, nothing is dropped), and
//! the journal has a size cap (`--max-journal-mb`): past it, and when the disk refuses a write,
//! tracking requests are answered 503 with Retry-After and `/readyz` says why.

pub mod directory;
mod failed_checks;
pub mod journal;
mod sealed;
mod status;
pub mod worker;
pub mod writer;

pub use status::{DECISION_WAIT, JournalStatus};
pub use writer::{EventSender, IngestError, JournalWriter};
