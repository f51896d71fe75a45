//! Dropping the last handle is a shutdown: what was queued is written and
//! fsynced, the stop record closes the run, and a final signed checkpoint
//! covers every record.

mod common;

use std::sync::Arc;
use std::time::Duration;

use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::{self, CheckpointOptions, origin_for, verify_dir_with_checkpoints};
use audit_logging::{AuditLogger, LoggerConfig};
use common::{key, records, tag_counts, tagged};

#[test]
fn dropping_the_last_handle_drains_the_queue_and_signs_a_final_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let signer =
        CheckpointSigner::generate(KeyName::new(&origin_for(key().id().as_str())).unwrap())
            .unwrap();
    let config = LoggerConfig::new(dir.path())
        .checkpoint_signer(CheckpointSigner::from_signer_key(&signer.signer_key()).unwrap())
        .checkpoint_every_records(1_000_000)
        .checkpoint_interval(Duration::from_secs(3600));
    let logger = Arc::new(AuditLogger::open(config, key()).unwrap());
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
    let options = CheckpointOptions::new().trusted_key(signer.verifier());
    let report = verify_dir_with_checkpoints(dir.path(), &key(), &options, |_| {}).unwrap();
    assert!(report.is_intact(), "{}", report.finding.unwrap());
}
