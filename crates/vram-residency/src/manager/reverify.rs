//! Re-verifying every resident shard, once or periodically in the
//! background.
//!
//! A seal proves the bytes were right when they were checked; corruption
//! (a bit flip, a stray kernel, another process) shows only at the next
//! check. [`VramManager::reverify_all`] checks every resident shard against
//! the seal the manager kept when it made it, recording each result as a
//! `vram.seal_verified` or `vram.seal_verification_failed` event exactly as
//! [`VramManager::verify_sealed`] does, and reports what the pass cost.
//! [`VramManager::spawn_reverifier`] runs such a pass on its own thread at a
//! fixed period until the [`Reverifier`] is stopped or dropped, or the
//! manager is gone.
//!
//! A pass holds the table lock shared, one shard at a time, like any
//! verification: it runs alongside callers' verifications and seals, and a
//! deallocation waits only for the shard being digested. A shard freed
//! while the pass runs is skipped, not reported as a failure.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::VramManager;
use super::lifecycle::Gone;
use crate::backend::VramBackend;
use crate::error::{HandleError, VerifyError};

/// One shard that failed a re-verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverifyFailure {
    /// The shard's id.
    pub shard_id: String,
    /// Why it failed, as recorded in its `vram.seal_verification_failed`
    /// event.
    pub reason: String,
}

/// What one pass over the resident shards found and cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReverifyReport {
    /// Shards whose device memory still matches their seal.
    pub verified: usize,
    /// Shards that did not.
    pub failed: Vec<ReverifyFailure>,
    /// Shards deallocated while the pass ran, so not checked.
    pub skipped: usize,
    /// Bytes digested, over the verified and failed shards.
    pub bytes: u64,
    /// Wall-clock time of the pass.
    pub took: Duration,
}

impl ReverifyReport {
    /// Whether every shard checked still matched its seal.
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty()
    }

    /// Bytes digested per second over the pass; 0 for an empty pass.
    pub fn bytes_per_second(&self) -> f64 {
        let secs = self.took.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        }
    }
}

impl<B: VramBackend> VramManager<B> {
    /// Verifies every resident shard against device memory once, against
    /// the seal the manager kept when it made it, and records each result
    /// as [`verify_sealed`](Self::verify_sealed) does. Shards freed while
    /// the pass runs are counted as skipped. It holds the table lock
    /// shared for one shard's digest at a time, so it runs alongside other
    /// verifications and seals.
    pub fn reverify_all(&self) -> ReverifyReport {
        let start = Instant::now();
        let mut report = ReverifyReport::default();
        // The seals are copied out so that the table is locked for one
        // shard's digest at a time, not for the whole pass.
        let seals = self.table_read().seals();
        for seal in &seals {
            match self.verify_and_record(seal, Gone::IsNews) {
                Ok(()) => {
                    report.verified = report.verified.saturating_add(1);
                    report.bytes = report.bytes.saturating_add(seal.bytes);
                }
                Err(VerifyError::Handle {
                    source: HandleError::Stale,
                    ..
                }) => report.skipped = report.skipped.saturating_add(1),
                Err(error) => {
                    report.bytes = report.bytes.saturating_add(seal.bytes);
                    report.failed.push(ReverifyFailure {
                        shard_id: seal.shard_id.clone(),
                        reason: error.to_string(),
                    });
                }
            }
        }
        report.took = start.elapsed();
        report
    }
}

impl<B: VramBackend + 'static> VramManager<B> {
    /// Starts a thread that runs [`reverify_all`](Self::reverify_all) every
    /// `period` (the first pass one period from now) and keeps the latest
    /// report. It holds only a weak reference: once the last `Arc` to the
    /// manager is dropped, it stops at its next wake-up.
    ///
    /// Each pass logs its cost through `tracing` (shards, bytes, time,
    /// throughput), at `warn` when a shard failed.
    pub fn spawn_reverifier(self: &Arc<Self>, period: Duration) -> std::io::Result<Reverifier> {
        let manager: Weak<Self> = Arc::downgrade(self);
        let state = Arc::new(Mutex::new(Passes::default()));
        let (stop, stopped) = mpsc::channel::<()>();
        let passes = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("vram-reverify".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    let Some(manager) = manager.upgrade() else {
                        return;
                    };
                    let report = manager.reverify_all();
                    log_pass(&report);
                    {
                        let mut passes = passes.lock().unwrap_or_else(PoisonError::into_inner);
                        passes.count = passes.count.saturating_add(1);
                        passes.failures = passes.failures.saturating_add(report.failed.len());
                        passes.last = Some(report);
                    }
                    // Last, in case this is the final reference: the
                    // manager's drop frees every shard and records it.
                    drop(manager);
                }
            })?;
        Ok(Reverifier {
            stop: Some(stop),
            thread: Some(thread),
            state,
        })
    }
}

fn log_pass(report: &ReverifyReport) {
    let (shards, bytes) = (
        report.verified.saturating_add(report.failed.len()),
        report.bytes,
    );
    let took_ms = report.took.as_secs_f64() * 1e3;
    let mb_per_s = report.bytes_per_second() / 1e6;
    if report.is_clean() {
        tracing::info!(
            shards,
            bytes,
            took_ms,
            mb_per_s,
            "re-verification pass clean"
        );
    } else {
        let failed = report.failed.len();
        tracing::warn!(
            shards,
            failed,
            bytes,
            took_ms,
            mb_per_s,
            "re-verification pass found corrupted shards"
        );
    }
}

#[derive(Debug, Default)]
struct Passes {
    count: u64,
    failures: usize,
    last: Option<ReverifyReport>,
}

/// The background re-verification started by
/// [`VramManager::spawn_reverifier`]. Dropping it stops the thread and
/// waits for a pass in progress to finish.
#[derive(Debug)]
pub struct Reverifier {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<Passes>>,
}

impl Reverifier {
    /// Passes completed so far.
    pub fn passes(&self) -> u64 {
        self.lock().count
    }

    /// Shard failures found over all passes so far.
    pub fn failures(&self) -> usize {
        self.lock().failures
    }

    /// The report of the latest completed pass.
    pub fn last_report(&self) -> Option<ReverifyReport> {
        self.lock().last.clone()
    }

    /// Stops the thread, waiting for a pass in progress, and returns the
    /// latest report.
    pub fn stop(mut self) -> Option<ReverifyReport> {
        self.halt();
        self.last_report()
    }

    fn halt(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            // A pass that panicked has nothing more to report.
            let _ = thread.join();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Passes> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Reverifier {
    fn drop(&mut self) {
        self.halt();
    }
}
