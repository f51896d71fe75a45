//! Dropping the last handle is a shutdown: what was queued is written and
//! fsynced, the stop record closes the run, and a final signed checkpoint
//! covers every record, even when the disk refuses it for a moment.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::{self, CheckpointOptions, origin_for, verify_dir_with_checkpoints};
use audit_logging::{AuditLogger, Health, LoggerConfig, SHUTDOWN_TIMEOUT};
use common::{key, records, tag_counts, tagged};

fn signer() -> CheckpointSigner {
    CheckpointSigner::generate(KeyName::new(&origin_for(key().id().as_str())).unwrap()).unwrap()
}

/// Checkpoints only at shutdown.
fn config(dir: &std::path::Path, signer: &CheckpointSigner) -> LoggerConfig {
    LoggerConfig::new(dir)
        .checkpoint_signer(CheckpointSigner::from_signer_key(&signer.signer_key()).unwrap())
        .checkpoint_every_records(1_000_000)
        .checkpoint_interval(Duration::from_secs(3600))
}

fn assert_verifies(dir: &std::path::Path, signer: &CheckpointSigner) {
    let options = CheckpointOptions::new().trusted_key(signer.verifier());
    let report = verify_dir_with_checkpoints(dir, &key(), &options, |_| {}).unwrap();
    assert!(report.is_intact(), "{}", report.finding.unwrap());
}

#[test]
fn dropping_the_last_handle_drains_the_queue_and_signs_a_final_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let logger = Arc::new(AuditLogger::open(config(dir.path(), &signer), key()).unwrap());
    let other = Arc::clone(&logger);
    for i in 0..100 {
        logger.emit_sync(tagged(&format!("e{i}"), i)).unwrap();
    }
    drop(logger);
    // The last handle goes on another thread, with no flush or shutdown.
    std::thread::spawn(move || drop(other)).join().unwrap();

    let tags = tag_counts(dir.path());
    assert_eq!(tags.len(), 100);
    let all = records(dir.path());
    let last = String::from_utf8(all.last().unwrap().bytes.clone()).unwrap();
    assert!(last.contains("\"audit.logger_stopped\""), "{last}");
    let (size, _) = logtree::latest_checkpoint(dir.path()).unwrap().unwrap();
    assert_eq!(
        size,
        all.len() as u64,
        "the final checkpoint covers every record"
    );
    assert_verifies(dir.path(), &signer);
}

#[test]
fn a_final_checkpoint_the_disk_refuses_for_a_moment_is_retried_within_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let logger = AuditLogger::open(config(dir.path(), &signer), key()).unwrap();
    logger.emit_sync(tagged("e", 0)).unwrap();
    // A file where the checkpoint directory must go refuses the checkpoint;
    // it is taken away once the writer reports the refusal.
    let blocker = dir.path().join(logtree::CHECKPOINT_DIR);
    std::fs::write(&blocker, b"").unwrap();
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            while logger.health() == Health::Ok && start.elapsed() < SHUTDOWN_TIMEOUT {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::fs::remove_file(&blocker).unwrap();
        });
        logger.shutdown().unwrap()
    });
    assert!(
        logger.stats().write_errors >= 1,
        "the checkpoint was never refused"
    );
    let (size, _) = logtree::latest_checkpoint(dir.path()).unwrap().unwrap();
    assert_eq!(size, report.last_seq);
    assert_verifies(dir.path(), &signer);
}
