//! A crash mid-write leaves a partial last line. The verifier reports it as
//! truncated; the next logger start cuts it, keeps its bytes aside, records
//! the recovery in the chain, and the log verifies again.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use audit_logging::verify::FindingKind;
use audit_logging::{AuditEvent, AuditLogger, Digest, LoggerConfig, query, segment_name};
use common::{
    Located, append, assert_finding_at, assert_intact, finding, key, open, other_key, records,
    write_log,
};
use sha2::{Digest as _, Sha256};

/// The files `torn-*.bin` in `dir`.
fn torn_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("torn-") && name.ends_with(".bin")
        })
        .collect();
    found.sort();
    found
}

/// The recovery records in `dir`.
fn recoveries(dir: &Path) -> Vec<AuditEvent> {
    query::read_events(dir)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e, AuditEvent::TornTailRecovered { .. }))
        .collect()
}

/// Appends `partial` to the newest segment of a fresh log and checks what
/// the verifier says, then what a logger start does about it.
fn crash_and_recover(partial: &[u8], max_segment_bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let last_seq = write_log(dir.path(), &key(), 4, max_segment_bytes);
    let newest = common::segments(dir.path()).pop().unwrap();
    let clean = fs::read(&newest).unwrap();
    let clean_len = clean.len() as u64;
    let last = records(dir.path()).pop().unwrap();
    append(&newest, partial);

    // Before recovery: the partial line is reported, not silently skipped.
    let torn_at = Located {
        segment: newest.clone(),
        line: last.line + 1,
        offset: clean_len,
        seq: last_seq + 1,
        bytes: partial.to_vec(),
    };
    assert_finding_at(
        &finding(dir.path(), &key()),
        FindingKind::Truncated,
        &torn_at,
    );

    // Recovery: cut, kept aside byte for byte, recorded.
    let logger = open(dir.path(), &key());
    logger.shutdown().unwrap();
    // The segment keeps its complete records; the partial line is gone
    // (replaced by the next record, unless that one opened a new segment).
    let after = fs::read(&newest).unwrap();
    assert_eq!(after[..clean.len()], clean[..]);
    let next_record = format!(
        "{{\"v\":{},\"seq\":{},",
        audit_logging::SCHEMA_VERSION,
        last_seq + 1
    );
    assert!(after.len() == clean.len() || after[clean.len()..].starts_with(next_record.as_bytes()));
    let aside = torn_files(dir.path());
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), partial);
    let aside_name = aside[0].file_name().unwrap().to_str().unwrap();
    let recovered = recoveries(dir.path());
    let [
        AuditEvent::TornTailRecovered {
            segment,
            offset,
            bytes,
            sha256,
            set_aside_as,
            ..
        },
    ] = recovered.as_slice()
    else {
        panic!("expected one recovery record, got {recovered:?}");
    };
    assert_eq!(
        segment.as_str(),
        newest.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(*offset, clean_len);
    assert_eq!(*bytes, partial.len() as u64);
    assert_eq!(*sha256, Digest(Sha256::digest(partial).into()));
    assert_eq!(set_aside_as.as_str(), aside_name);

    // After recovery: intact, and the recovery counted as such.
    let report = assert_intact(dir.path(), &key());
    assert_eq!(report.torn_tails_recovered, 1);
    assert_eq!(report.logger_starts, 2);
    assert_eq!(report.last_seq, last_seq + 3, "start, recovery, stop");
}

#[test]
fn a_partial_record_at_the_end_is_truncated_then_recovered_and_recorded() {
    crash_and_recover(b"{\"v\":1,\"seq\":7,\"ts\":\"2026-12-03T1", u64::MAX);
}

#[test]
fn a_partial_line_of_arbitrary_bytes_is_kept_aside_exactly() {
    crash_and_recover(b"\x00\xff garbage \x1b[31m \xe2\x80\xae", u64::MAX);
}

#[test]
fn a_torn_tail_in_a_rotated_segment_is_recovered() {
    crash_and_recover(b"{\"v\":1,\"seq\":", 1000);
}

#[test]
fn a_crash_cut_at_any_point_of_a_real_record_is_recovered() {
    // The bytes a crash could leave of the record the logger would write
    // next: take a real record and cut it at several points, up to the
    // whole record without its newline.
    let template = {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &key(), 6, u64::MAX);
        records(dir.path())[6].bytes.clone()
    };
    for keep in [
        1,
        2,
        template.len() / 3,
        template.len() - 75,
        template.len(),
    ] {
        crash_and_recover(&template[..keep], u64::MAX);
    }
}

#[test]
fn a_record_missing_only_its_newline_is_set_aside_and_its_number_reused() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &key(), 2, u64::MAX);
    let seg = dir.path().join(segment_name(1));
    let mut data = fs::read(&seg).unwrap();
    assert_eq!(data.pop(), Some(b'\n'));
    let last_line_start = data.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let unterminated = data[last_line_start..].to_vec();
    fs::write(&seg, &data).unwrap();
    assert_eq!(
        finding(dir.path(), &key()).kind,
        FindingKind::Truncated,
        "a record without its line end is not complete"
    );

    open(dir.path(), &key()).shutdown().unwrap();
    let aside = torn_files(dir.path());
    assert_eq!(fs::read(&aside[0]).unwrap(), unterminated);
    let report = assert_intact(dir.path(), &key());
    assert_eq!(report.logger_starts, 2);
    assert_eq!(
        report.last_seq,
        3 + 3,
        "start, recovery, stop after record 3"
    );
    // Record 4 (the old stop record) was never complete: the new start took
    // its number and says it resumed after record 3.
    let fourth = &records(dir.path())[3];
    assert_eq!(fourth.offset, last_line_start as u64);
    let events = query::read_events(dir.path()).unwrap();
    assert!(
        matches!(
            events[3],
            AuditEvent::LoggerStarted {
                resumed_after_seq: Some(3),
                ..
            }
        ),
        "{:?}",
        events[3]
    );
}

#[test]
fn a_torn_tail_that_is_a_whole_new_segment_is_cut_to_empty_and_recovered() {
    // A crash right after rotation: the new segment holds only part of its
    // first record.
    let dir = tempfile::tempdir().unwrap();
    let last_seq = write_log(dir.path(), &key(), 3, u64::MAX);
    let fresh = dir.path().join(segment_name(last_seq + 1));
    append(&fresh, b"{\"v\":1,\"seq\":6,\"ts\":");
    assert_eq!(finding(dir.path(), &key()).kind, FindingKind::Truncated);

    let logger = AuditLogger::open(LoggerConfig::new(dir.path()), key()).unwrap();
    logger.shutdown().unwrap();
    assert_eq!(torn_files(dir.path()).len(), 1);
    let report = assert_intact(dir.path(), &key());
    assert_eq!(report.torn_tails_recovered, 1);
    // The new segment now starts with the record its name promises.
    let first_in_fresh = records(dir.path())
        .into_iter()
        .find(|r| r.segment == fresh)
        .unwrap();
    assert_eq!((first_in_fresh.line, first_in_fresh.seq), (1, last_seq + 1));
}

#[test]
fn without_a_torn_tail_a_start_sets_nothing_aside() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &key(), 2, u64::MAX);
    open(dir.path(), &key()).shutdown().unwrap();
    assert!(torn_files(dir.path()).is_empty());
    assert!(recoveries(dir.path()).is_empty());
    assert_eq!(assert_intact(dir.path(), &key()).torn_tails_recovered, 0);
}

/// The side files still waiting for their recovery record.
fn pending_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(".bin.pending"))
        .collect()
}

#[test]
fn a_torn_tail_cut_by_a_refused_start_is_recorded_by_the_next_start() {
    use audit_logging::checkpoint::{CheckpointSigner, KeyName};
    use audit_logging::logtree::origin_for;

    let dir = tempfile::tempdir().unwrap();
    let last_seq = write_log(dir.path(), &key(), 4, u64::MAX);
    let newest = common::segments(dir.path()).pop().unwrap();
    let partial = b"{\"v\":2,\"seq\":9,\"ts\":\"2026";
    append(&newest, partial);

    // A checkpoint key made for another trail: the start is refused, after
    // the store has cut the torn tail.
    let foreign =
        CheckpointSigner::generate(KeyName::new(&origin_for(other_key().id().as_str())).unwrap())
            .unwrap();
    let refused = AuditLogger::open(
        LoggerConfig::new(dir.path()).checkpoint_signer(foreign),
        key(),
    );
    assert!(refused.is_err());
    assert_eq!(
        pending_files(dir.path()).len(),
        1,
        "kept aside, not yet recorded"
    );
    assert!(torn_files(dir.path()).is_empty());
    assert!(recoveries(dir.path()).is_empty());

    // A second refusal cuts nothing more and copies nothing twice.
    let foreign =
        CheckpointSigner::generate(KeyName::new(&origin_for(other_key().id().as_str())).unwrap())
            .unwrap();
    assert!(
        AuditLogger::open(
            LoggerConfig::new(dir.path()).checkpoint_signer(foreign),
            key()
        )
        .is_err()
    );
    assert_eq!(pending_files(dir.path()).len(), 1);

    // The next start that goes through records the cut, once.
    open(dir.path(), &key()).shutdown().unwrap();
    assert!(pending_files(dir.path()).is_empty());
    let aside = torn_files(dir.path());
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), partial);
    let recovered = recoveries(dir.path());
    let [
        AuditEvent::TornTailRecovered {
            set_aside_as,
            bytes,
            ..
        },
    ] = recovered.as_slice()
    else {
        panic!("expected one recovery record, got {recovered:?}");
    };
    assert_eq!(
        set_aside_as.as_str(),
        aside[0].file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(*bytes, partial.len() as u64);
    let report = assert_intact(dir.path(), &key());
    assert_eq!(report.torn_tails_recovered, 1);
    assert_eq!(report.last_seq, last_seq + 3, "start, recovery, stop");

    // And a later start reports nothing again.
    open(dir.path(), &key()).shutdown().unwrap();
    assert_eq!(recoveries(dir.path()).len(), 1);
}
