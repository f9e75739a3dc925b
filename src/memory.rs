//! Handing freed memory back to the system after bulk work.
//!
//! A registration of many messages at once holds its request and response bodies whole (10,000
//! messages of a small newsletter: about 35 MB). glibc keeps what is freed in its arenas, so the
//! server stayed at that size afterwards, through the tracking load that followed (bench/run:
//! 63 MB resident after registering 20,000 recipients, the same during and after the load). A
//! trim shortly after such a request, once its answer has gone out, gives it back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Calls of [`release_soon`] so far: a scheduled trim runs only if no later call came meanwhile.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Trims the allocator's free memory half a second after the last of a series of calls (one
/// trim after a run of bulk registrations, not one per call).
pub fn release_soon() {
    let call = CALLS.fetch_add(1, Ordering::AcqRel) + 1;
    tokio::spawn(async move {
        // Long enough for the answer that freed the memory to have been written and dropped.
        tokio::time::sleep(Duration::from_millis(500)).await;
        if CALLS.load(Ordering::Acquire) == call {
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
