//! Retention: the oldest closed segments of a checkpointed trail are
//! retired (deleted or archived) once an anchor covers them, the trail
//! still verifies and continues, and every way of faking a retirement is
//! reported.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::{
    self, Anchor, CheckpointOptions, origin_for, verify_dir_with_checkpoints,
};
use audit_logging::merkle::{self, CompactRange};
use audit_logging::retention::{
    self, BASE_FILE, RetentionBase, RetentionError, RetentionPolicy, RetentionReport,
};
use audit_logging::verify::{FindingKind, VerifyError};
use audit_logging::{AuditEvent, AuditKey, AuditLogger, Digest, LoggerConfig, VerifyReport};
use chrono::{TimeDelta, Utc};
use common::{assert_intact, finding, key, records, segments, tagged};
use sha2::{Digest as _, Sha256};

/// Small segments, so a few dozen events make several.
const SEGMENT_BYTES: u64 = 1500;

fn signer() -> CheckpointSigner {
    CheckpointSigner::generate(KeyName::new(&origin_for(key().id().as_str())).unwrap()).unwrap()
}

fn config(dir: &Path, signer: &CheckpointSigner) -> LoggerConfig {
    LoggerConfig::new(dir)
        .max_segment_bytes(SEGMENT_BYTES)
        .checkpoint_signer(CheckpointSigner::from_signer_key(&signer.signer_key()).unwrap())
        .checkpoint_every_records(5)
        .checkpoint_interval(Duration::from_secs(3600))
}

/// Writes `events` tagged events through a logger that signs checkpoints
/// (every 5 records and at shutdown), starting at tag `from`.
fn write(dir: &Path, signer: &CheckpointSigner, from: u64, events: u64) {
    let logger = AuditLogger::open(config(dir, signer), key()).unwrap();
    for i in from..from + events {
        logger.emit_sync(tagged(&format!("e{i}"), i)).unwrap();
        // One record at a time, so checkpoints fall every 5 records.
        logger.flush().unwrap();
    }
    logger.shutdown().unwrap();
}

/// A checkpointed trail of several segments.
fn trail(events: u64) -> (tempfile::TempDir, CheckpointSigner) {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    write(dir.path(), &signer, 0, events);
    assert!(segments(dir.path()).len() >= 4);
    (dir, signer)
}

/// The newest stored checkpoint, exported as an anchor.
fn anchor(dir: &Path, signer: &CheckpointSigner) -> Anchor {
    let (_, latest) = logtree::latest_checkpoint(dir).unwrap().unwrap();
    Anchor::load(&latest, key().id().as_str(), &signer.verifier()).unwrap()
}

/// Everything written so far counts as past a 30-day retention.
fn everything_old() -> RetentionPolicy {
    RetentionPolicy::new(TimeDelta::days(30)).now(Utc::now() + TimeDelta::days(31))
}

fn retire(
    dir: &Path,
    signer: &CheckpointSigner,
    anchor: Anchor,
    policy: &RetentionPolicy,
) -> Result<RetentionReport, RetentionError> {
    retention::retire(
        config(dir, signer),
        &key(),
        &signer.verifier(),
        anchor,
        policy,
    )
}

fn verify_anchored(dir: &Path, signer: &CheckpointSigner, anchor: Anchor) -> VerifyReport {
    let options = CheckpointOptions::new()
        .trusted_key(signer.verifier())
        .anchor(anchor);
    verify_dir_with_checkpoints(dir, &key(), &options, |_| {}).unwrap()
}

#[track_caller]
fn assert_anchored_intact(dir: &Path, signer: &CheckpointSigner, anchor: Anchor) -> VerifyReport {
    let report = verify_anchored(dir, signer, anchor);
    assert!(report.is_intact(), "{}", report.finding.unwrap());
    assert!(report.checkpoints.as_ref().unwrap().anchor_checked);
    report
}

/// The retirement records of the trail, in log order.
fn retirements(dir: &Path) -> Vec<AuditEvent> {
    audit_logging::query::read_events(dir)
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type() == "audit.segments_retired")
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

#[test]
fn old_covered_segments_are_retired_and_the_trail_still_verifies() {
    let (dir, signer) = trail(40);
    let before = segments(dir.path());
    let report = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old(),
    )
    .unwrap();

    // Every closed segment was covered and old; the open one stays (the
    // retention's own records may have opened more after it).
    let after = segments(dir.path());
    assert_eq!(report.retired.len(), before.len() - 1);
    assert_eq!(&after[0], before.last().unwrap());
    assert!(report.kept_because.unwrap().contains("open segment"));
    let first_kept = report.first_kept_seq.unwrap();
    assert_eq!(
        after[0].file_name().unwrap().to_str().unwrap(),
        audit_logging::segment_name(first_kept)
    );
    let base_mode = fs::metadata(dir.path().join(BASE_FILE)).unwrap().mode();
    assert_eq!(base_mode & 0o777, 0o600);

    // The chain says what went.
    let [
        AuditEvent::SegmentsRetired {
            first_kept_seq,
            segments: named,
            archived_to,
            ..
        },
    ] = &retirements(dir.path())[..]
    else {
        panic!("one retirement record expected");
    };
    assert_eq!(*first_kept_seq, first_kept);
    assert_eq!(named, &report.retired);
    assert_eq!(*archived_to, None);

    // Every way of checking the trail accepts it.
    let plain = assert_intact(dir.path(), &key());
    assert_eq!(plain.retired_records, first_kept - 1);
    let anchored = assert_anchored_intact(dir.path(), &signer, anchor(dir.path(), &signer));
    assert_eq!(anchored.last_seq, plain.last_seq);
    let mut seen = 0;
    audit_logging::query::query(dir.path(), &Default::default(), Some(&key()), |_| {
        seen += 1;
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, plain.records);
}

#[test]
fn the_anchor_retention_relied_on_still_verifies_the_trail_after_it() {
    let (dir, signer) = trail(40);
    let kept = anchor(dir.path(), &signer);
    retire(dir.path(), &signer, kept.clone(), &everything_old()).unwrap();
    let report = assert_anchored_intact(dir.path(), &signer, kept);
    let tree = report.checkpoints.unwrap();
    assert_eq!(tree.tree_size, report.last_seq);
    assert!(
        tree.retired > 0,
        "checkpoints within the retired records are not checked"
    );
}

#[test]
fn a_logger_restarted_after_retention_continues_and_a_second_retention_verifies() {
    let (dir, signer) = trail(40);
    let first = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old(),
    )
    .unwrap();

    // The tree is rebuilt from retired.json, and checkpoints go on.
    write(dir.path(), &signer, 40, 40);
    let newer = anchor(dir.path(), &signer);
    assert_anchored_intact(dir.path(), &signer, newer.clone());

    let second = retire(dir.path(), &signer, newer.clone(), &everything_old()).unwrap();
    assert!(second.first_kept_seq.unwrap() > first.first_kept_seq.unwrap());
    assert_eq!(
        retirements(dir.path()).len(),
        1,
        "the first record was retired too"
    );
    assert_anchored_intact(dir.path(), &signer, newer);
    assert_intact(dir.path(), &key());
    write(dir.path(), &signer, 80, 3);
    assert_anchored_intact(dir.path(), &signer, anchor(dir.path(), &signer));
}

#[test]
fn a_segment_past_retention_but_not_covered_by_the_anchor_is_kept() {
    let (dir, signer) = trail(10);
    let early = anchor(dir.path(), &signer);
    let covered = early.checkpoint().size();
    write(dir.path(), &signer, 10, 40);

    let report = retire(dir.path(), &signer, early.clone(), &everything_old()).unwrap();
    let last_retired = report.retired.last().unwrap().last_seq;
    assert!(last_retired <= covered);
    assert!(
        report
            .kept_because
            .as_ref()
            .unwrap()
            .contains("not all covered by the anchor")
    );
    // The oldest kept segment reaches past the anchor.
    let kept = segments(dir.path());
    assert!(
        kept.len() >= 3,
        "the segments written after the anchor are kept"
    );
    assert_anchored_intact(dir.path(), &signer, early);
}

#[test]
fn a_covered_segment_that_is_too_young_is_kept_and_nothing_is_recorded() {
    let (dir, signer) = trail(40);
    let before = segments(dir.path());
    let young = RetentionPolicy::new(TimeDelta::days(30));
    let report = retire(dir.path(), &signer, anchor(dir.path(), &signer), &young).unwrap();
    assert!(report.retired.is_empty());
    assert_eq!(report.first_kept_seq, None);
    assert!(report.kept_because.unwrap().contains("is not older than"));
    assert_eq!(segments(dir.path())[..before.len()], before[..]);
    assert!(!dir.path().join(BASE_FILE).exists());
    assert!(retirements(dir.path()).is_empty());
    assert_intact(dir.path(), &key());
}

#[test]
fn a_dry_run_says_what_would_go_and_changes_nothing() {
    let (dir, signer) = trail(40);
    let before = segments(dir.path());
    let records_before = records(dir.path()).len();
    let report = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old().dry_run(true),
    )
    .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.retired.len(), before.len() - 1);
    assert_eq!(report.record_seq, None);
    assert_eq!(segments(dir.path()), before);
    assert_eq!(records(dir.path()).len(), records_before);
    assert!(!dir.path().join(BASE_FILE).exists());
}

#[test]
fn archived_segments_are_moved_owner_only_and_still_hash_to_their_manifests() {
    let (dir, signer) = trail(40);
    let archive_parent = tempfile::tempdir().unwrap();
    let archive = archive_parent.path().join("archive");
    let before = segments(dir.path());
    let digests: Vec<String> = before.iter().map(|p| sha256_hex(p)).collect();
    let report = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old().archive_to(&archive),
    )
    .unwrap();
    assert_eq!(report.archived_to.as_deref(), Some(archive.as_path()));
    assert_eq!(fs::metadata(&archive).unwrap().mode() & 0o777, 0o700);

    // Each archived file is the one its manifest (in the next segment) and
    // the retirement record sealed.
    let manifests: Vec<AuditEvent> = audit_logging::query::read_events(dir.path())
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type() == "audit.segment_closed")
        .collect();
    assert!(!manifests.is_empty());
    for (i, sealed) in report.retired.iter().enumerate() {
        let moved = archive.join(sealed.segment.as_str());
        assert!(!before[i].exists());
        assert_eq!(fs::metadata(&moved).unwrap().mode() & 0o777, 0o600);
        assert_eq!(sha256_hex(&moved), digests[i]);
        assert_eq!(sealed.sha256.to_hex(), digests[i]);
    }
    let AuditEvent::SegmentClosed {
        segment,
        sha256,
        root,
        ..
    } = &manifests[0]
    else {
        unreachable!()
    };
    let last = report.retired.last().unwrap();
    assert_eq!(
        (segment, sha256, root),
        (&last.segment, &last.sha256, &Some(last.root))
    );
    let [AuditEvent::SegmentsRetired { archived_to, .. }] = &retirements(dir.path())[..] else {
        panic!("one retirement record expected");
    };
    assert_eq!(
        archived_to.as_ref().unwrap().as_str(),
        archive.display().to_string()
    );
    assert_anchored_intact(dir.path(), &signer, anchor(dir.path(), &signer));
}

#[test]
fn an_archive_that_is_a_symbolic_link_is_refused_before_any_file_moves() {
    let (dir, signer) = trail(40);
    let elsewhere = tempfile::tempdir().unwrap();
    let link = dir.path().parent().unwrap().join(format!(
        "archive-link-{}",
        dir.path().file_name().unwrap().to_str().unwrap()
    ));
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let err = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old().archive_to(&link),
    )
    .unwrap_err();
    fs::remove_file(&link).unwrap();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn a_trail_that_does_not_verify_is_not_retired() {
    let (dir, signer) = trail(40);
    let before = segments(dir.path());
    let lines = records(dir.path()).len();
    let text = fs::read_to_string(&before[1]).unwrap();
    fs::write(&before[1], text.replacen("tester", "mallor", 1)).unwrap();
    let err = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old(),
    )
    .unwrap_err();
    let RetentionError::NotIntact(report) = &err else {
        panic!("{err}");
    };
    assert_eq!(report.finding.as_ref().unwrap().kind, FindingKind::Modified);
    assert_eq!(records(dir.path()).len(), lines, "nothing was written");
    assert_eq!(segments(dir.path()), before);
    assert!(!dir.path().join(BASE_FILE).exists());
}

/// A retired trail, its anchor, and the retirement's report.
fn retired_trail() -> (tempfile::TempDir, CheckpointSigner, Anchor, RetentionReport) {
    let (dir, signer) = trail(60);
    let anchor = anchor(dir.path(), &signer);
    // Keep a few closed segments: retire only what the first half covers.
    let half = records(dir.path()).len() as u64 / 2;
    let mut report = None;
    for (size, path) in logtree::list_checkpoints(dir.path()).unwrap() {
        if size >= half {
            let partial = Anchor::load(&path, key().id().as_str(), &signer.verifier()).unwrap();
            report = Some(retire(dir.path(), &signer, partial, &everything_old()).unwrap());
            break;
        }
    }
    let report = report.unwrap();
    assert!(!report.retired.is_empty());
    assert!(segments(dir.path()).len() >= 3);
    (dir, signer, anchor, report)
}

#[test]
fn a_kept_segment_deleted_after_retention_is_missing() {
    let (dir, signer, anchor, _) = retired_trail();
    let oldest = segments(dir.path())[0].clone();
    fs::remove_file(&oldest).unwrap();
    let f = finding(dir.path(), &key());
    assert_eq!(f.kind, FindingKind::SegmentMissing, "{f}");
    assert_eq!(f.segment, oldest);
    assert!(!verify_anchored(dir.path(), &signer, anchor).is_intact());
}

/// What a careful attacker writes to make a base for a later cut: the
/// retired records' frontier, extended by the records being removed.
fn forge_base(dir: &Path, deleted: &[PathBuf]) {
    let base = RetentionBase::load(dir).unwrap();
    let (mut tree, mut last_hash, mut epoch, mut next) = match &base {
        Some(b) => (
            b.tree().clone(),
            b.last_retired_hash().0,
            b.last_retired_epoch(),
            b.first_kept_seq(),
        ),
        None => (CompactRange::new(), [0; 32], 0, 1),
    };
    for path in deleted {
        for line in fs::read_to_string(path).unwrap().lines() {
            let rec = audit_logging::record::RawRecord::parse(line.as_bytes()).unwrap();
            let hash: [u8; 32] = Sha256::digest(line.as_bytes()).into();
            tree.append(merkle::leaf_hash(&hash)).unwrap();
            last_hash = hash;
            epoch = rec.epoch;
            next = rec.seq + 1;
        }
        fs::remove_file(path).unwrap();
    }
    let json = serde_json::json!({
        "v": 1,
        "first_kept_seq": next,
        "last_retired_hash": Digest(last_hash),
        "last_retired_epoch": epoch,
        "tree": tree,
    });
    fs::write(dir.join(BASE_FILE), json.to_string()).unwrap();
}

#[test]
fn a_base_edited_to_skip_another_segment_is_a_retirement_mismatch() {
    let (dir, signer, anchor, report) = retired_trail();
    let oldest = segments(dir.path())[0].clone();
    forge_base(dir.path(), &[oldest]);
    let f = finding(dir.path(), &key());
    assert_eq!(f.kind, FindingKind::RetirementMismatch, "{f}");
    assert!(f.detail.contains(&format!(
        "cut the trail before record {}",
        report.first_kept_seq.unwrap()
    )));
    let f = verify_anchored(dir.path(), &signer, anchor)
        .finding
        .unwrap();
    assert_eq!(f.kind, FindingKind::RetirementMismatch, "{f}");
}

#[test]
fn segments_deleted_behind_a_made_up_base_are_an_unrecorded_retirement() {
    let (dir, signer) = trail(40);
    let anchor = anchor(dir.path(), &signer);
    let all = segments(dir.path());
    forge_base(dir.path(), &all[..2]);
    let f = finding(dir.path(), &key());
    assert_eq!(f.kind, FindingKind::RetirementUnrecorded, "{f}");
    assert_eq!(f.segment, dir.path().join(BASE_FILE));
    let f = verify_anchored(dir.path(), &signer, anchor)
        .finding
        .unwrap();
    assert_eq!(f.kind, FindingKind::RetirementUnrecorded, "{f}");
}

#[test]
fn an_edited_retirement_record_fails_its_mac() {
    let (dir, _, _, report) = retired_trail();
    let seq = report.record_seq.unwrap();
    let at = records(dir.path())
        .into_iter()
        .find(|r| {
            audit_logging::record::RawRecord::parse(&r.bytes)
                .unwrap()
                .seq
                == seq
        })
        .unwrap();
    let text = fs::read_to_string(&at.segment).unwrap();
    let first = report.first_kept_seq.unwrap();
    let edited = text.replacen(
        &format!("\"first_kept_seq\":{first}"),
        &format!("\"first_kept_seq\":{}", first + 1),
        1,
    );
    assert_ne!(edited, text);
    fs::write(&at.segment, edited).unwrap();
    let f = finding(dir.path(), &key());
    assert_eq!(
        (f.kind, f.expected_seq),
        (FindingKind::Modified, seq),
        "{f}"
    );
}

#[test]
fn removing_the_base_after_retention_shows_the_missing_segments() {
    let (dir, _, _, _) = retired_trail();
    fs::remove_file(dir.path().join(BASE_FILE)).unwrap();
    let f = finding(dir.path(), &key());
    assert!(
        matches!(
            f.kind,
            FindingKind::SegmentMissing | FindingKind::SegmentMismatch
        ),
        "{f}"
    );
}

#[test]
fn a_base_that_is_not_one_is_invalid() {
    let (dir, _, _, _) = retired_trail();
    fs::write(dir.path().join(BASE_FILE), "{\"v\":1,\"first_kept_seq\":3}").unwrap();
    let f = finding(dir.path(), &key());
    assert_eq!(f.kind, FindingKind::RetirementInvalid, "{f}");
}

#[test]
fn an_anchor_older_than_the_cut_cannot_be_checked() {
    let (dir, signer) = trail(10);
    let old = anchor(dir.path(), &signer);
    write(dir.path(), &signer, 10, 40);
    retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old(),
    )
    .unwrap();
    let options = CheckpointOptions::new()
        .trusted_key(signer.verifier())
        .anchor(old);
    let err = verify_dir_with_checkpoints(dir.path(), &key(), &options, |_| {}).unwrap_err();
    assert!(matches!(err, VerifyError::AnchorRetired { .. }), "{err}");
}

#[test]
fn proofs_are_refused_after_retention_with_a_reason() {
    let (dir, _, _, report) = retired_trail();
    let last = report.verified.last_seq;
    let err = logtree::prove_inclusion(dir.path(), last).unwrap_err();
    assert!(err.to_string().contains("were retired"), "{err}");
}

/// Another key never verifies a retired trail: the base does not help
/// forge records.
#[test]
fn a_retired_trail_does_not_verify_under_another_key() {
    let (dir, _, _, _) = retired_trail();
    let other: AuditKey = common::other_key();
    let report = audit_logging::verify_dir(dir.path(), &other).unwrap();
    assert!(!report.is_intact());
}

/// A retention interrupted after its record was written and before
/// `retired.json` was replaced leaves the older base and every segment:
/// the trail verifies, and the next run retires again.
#[test]
fn a_retention_interrupted_after_its_record_leaves_a_trail_that_verifies() {
    let (dir, signer) = trail(40);
    retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old(),
    )
    .unwrap();
    let first_base = fs::read(dir.path().join(BASE_FILE)).unwrap();
    write(dir.path(), &signer, 40, 40);
    let archive = tempfile::tempdir().unwrap();
    let second = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old().archive_to(archive.path().join("a")),
    )
    .unwrap();
    // Undo steps 4 and 5 of the second run.
    for s in &second.retired {
        let name = s.segment.as_str();
        fs::rename(archive.path().join("a").join(name), dir.path().join(name)).unwrap();
    }
    fs::write(dir.path().join(BASE_FILE), first_base).unwrap();
    assert_eq!(retirements(dir.path()).len(), 2);

    assert_intact(dir.path(), &key());
    let newest = anchor(dir.path(), &signer);
    assert_anchored_intact(dir.path(), &signer, newest.clone());
    retire(dir.path(), &signer, newest.clone(), &everything_old()).unwrap();
    assert_anchored_intact(dir.path(), &signer, newest);
}

/// The same leftovers, but with `retired.json` already moved on: the
/// segments before the cut are not read, and the next run removes them as
/// the record of the run that left them says (here: into its archive). A
/// run told to delete them instead is refused and changes nothing.
#[test]
fn segments_left_before_the_cut_are_ignored_and_removed_by_the_next_run() {
    let (dir, signer) = trail(40);
    let archive = tempfile::tempdir().unwrap();
    let first = retire(
        dir.path(),
        &signer,
        anchor(dir.path(), &signer),
        &everything_old().archive_to(archive.path().join("a")),
    )
    .unwrap();
    let left = first.retired[0].segment.as_str().to_owned();
    fs::rename(archive.path().join("a").join(&left), dir.path().join(&left)).unwrap();
    assert_intact(dir.path(), &key());

    let young = RetentionPolicy::new(TimeDelta::days(30));
    let err = retire(dir.path(), &signer, anchor(dir.path(), &signer), &young).unwrap_err();
    assert!(
        matches!(err, RetentionError::RecordedOtherwise { .. }),
        "{err}"
    );
    assert!(dir.path().join(&left).exists());
    assert_eq!(retirements(dir.path()).len(), 1);

    let young = young.archive_to(archive.path().join("a"));
    let report = retire(dir.path(), &signer, anchor(dir.path(), &signer), &young).unwrap();
    assert_eq!(
        report.finished_from_earlier_run,
        std::slice::from_ref(&left)
    );
    assert!(!dir.path().join(&left).exists());
    assert!(archive.path().join("a").join(&left).exists());
    assert_intact(dir.path(), &key());
}

/// One writer per directory: while a logger runs, retention (and its dry
/// run) refuse rather than read a trail being appended to.
#[test]
fn retention_refuses_while_another_writer_holds_the_trail() {
    let (dir, signer) = trail(40);
    let anchor = anchor(dir.path(), &signer);
    let before = segments(dir.path());
    let running = AuditLogger::open(config(dir.path(), &signer), key()).unwrap();
    for policy in [everything_old(), everything_old().dry_run(true)] {
        let err = retire(dir.path(), &signer, anchor.clone(), &policy).unwrap_err();
        assert!(
            matches!(
                err,
                RetentionError::Open(audit_logging::OpenError::Locked { .. })
            ),
            "{err}"
        );
    }
    running.shutdown().unwrap();
    assert_eq!(segments(dir.path())[..before.len()], before[..]);
}
