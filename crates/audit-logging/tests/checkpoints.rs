//! Signed checkpoints over the log's Merkle tree: written by the real
//! logger, checked against independent recomputations, and used to catch
//! what the hash chain alone cannot (cutting records off the end, and a
//! history rewritten with a stolen record key).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::{
    self, Anchor, AnchorError, CheckpointOptions, CheckpointReport, origin_for,
    verify_dir_with_checkpoints,
};
use audit_logging::merkle::{self, Hash};
use audit_logging::verify::FindingKind;
use audit_logging::{AuditKey, AuditLogger, LoggerConfig, OpenError, VerifyReport};
use common::note_spec as spec;
use common::{key, records, segments, tagged};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha256};

/// The bytes of [`common::key`], for the attacker who stole it.
const STOLEN_KEY: [u8; 32] = [0x5e; 32];

fn signer(key: &AuditKey) -> CheckpointSigner {
    CheckpointSigner::generate(KeyName::new(&origin_for(key.id().as_str())).unwrap()).unwrap()
}

fn copy(signer: &CheckpointSigner) -> CheckpointSigner {
    CheckpointSigner::from_signer_key(&signer.signer_key()).unwrap()
}

/// A logger that checkpoints every `every` records (and not by time).
fn open(dir: &Path, key: &AuditKey, signer: &CheckpointSigner, every: u64) -> AuditLogger {
    let config = LoggerConfig::new(dir)
        .checkpoint_signer(copy(signer))
        .checkpoint_every_records(every)
        .checkpoint_interval(Duration::from_secs(3600));
    AuditLogger::open(config, key.clone()).unwrap()
}

/// Emits `events` events one at a time, each flushed before the next, so
/// that the writer sees every record on its own and checkpoint sizes are
/// exact; then shuts down.
fn write(logger: &AuditLogger, events: u64) {
    for i in 0..events {
        logger.emit_sync(tagged(&format!("e{i}"), i)).unwrap();
        logger.flush().unwrap();
    }
    logger.shutdown().unwrap();
}

/// A log of 1 start record, `events` events and 1 stop record.
fn signed_log(events: u64, every: u64) -> (tempfile::TempDir, CheckpointSigner) {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer(&key());
    write(&open(dir.path(), &key(), &signer, every), events);
    (dir, signer)
}

fn stored(dir: &Path) -> Vec<(u64, PathBuf)> {
    logtree::list_checkpoints(dir).unwrap()
}

fn sizes(dir: &Path) -> Vec<u64> {
    stored(dir).into_iter().map(|(s, _)| s).collect()
}

fn leaves(dir: &Path) -> Vec<Hash> {
    records(dir)
        .iter()
        .map(|r| merkle::leaf_hash(&Sha256::digest(&r.bytes)))
        .collect()
}

fn check(dir: &Path, options: &CheckpointOptions) -> VerifyReport {
    verify_dir_with_checkpoints(dir, &key(), options, |_| {}).unwrap()
}

fn trusting(signer: &CheckpointSigner) -> CheckpointOptions {
    CheckpointOptions::new().trusted_key(signer.verifier())
}

fn tree_report(report: &VerifyReport) -> &CheckpointReport {
    report.checkpoints.as_ref().unwrap()
}

/// The newest stored checkpoint, as an anchor kept off the host.
fn export_anchor(dir: &Path, signer: &CheckpointSigner) -> Anchor {
    let (_, latest) = logtree::latest_checkpoint(dir).unwrap().unwrap();
    Anchor::load(&latest, key().id().as_str(), &signer.verifier()).unwrap()
}

/// Removes the last `n` records of the (single) segment and, like a careful
/// attacker, every stored checkpoint that now points past the end.
fn cut_records(dir: &Path, n: usize, remove_checkpoints: bool) -> u64 {
    let segment = segments(dir).pop().unwrap();
    let data = fs::read(&segment).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let keep = lines.len() - n;
    fs::write(&segment, lines[..keep].concat()).unwrap();
    let size = records(dir).len() as u64;
    if remove_checkpoints {
        for (s, path) in stored(dir) {
            if s > size {
                fs::remove_file(path).unwrap();
            }
        }
    }
    size
}

/// What an attacker holding the record key does: changes record
/// `target_seq` and recomputes the `prev` link and mac of it and every later
/// record, so the chain verifies again.
fn rewrite_with_stolen_key(dir: &Path, target_seq: u64) {
    const MAC_SUFFIX: usize = 8 + 64 + 2;
    let mut seq = 0u64;
    let mut prev: Option<[u8; 32]> = None;
    for segment in segments(dir) {
        let data = fs::read(&segment).unwrap();
        let mut out = Vec::new();
        for line in data.split_inclusive(|&b| b == b'\n') {
            seq += 1;
            let mut line = line[..line.len() - 1].to_vec();
            if seq == target_seq {
                let text = String::from_utf8(line).unwrap();
                assert!(text.contains("\"tester\""), "{text}");
                line = text.replace("\"tester\"", "\"mallory\"").into_bytes();
            }
            if let Some(hash) = prev {
                let at = line.windows(8).position(|w| w == b"\"prev\":\"").unwrap() + 8;
                line[at..at + 64].copy_from_slice(hex::encode(hash).as_bytes());
            }
            if seq >= target_seq {
                let mut body = line[..line.len() - MAC_SUFFIX].to_vec();
                body.push(b'}');
                // The whole log was written in one run: every record is in key
                // epoch 0, whose key the thief derives from the stolen audit key.
                let mut seed = Hmac::<Sha256>::new_from_slice(&STOLEN_KEY).unwrap();
                seed.update(audit_logging::forward::SEED_DOMAIN);
                let epoch_0 = seed.finalize().into_bytes();
                let mut mac = Hmac::<Sha256>::new_from_slice(&epoch_0).unwrap();
                mac.update(audit_logging::record::MAC_DOMAIN);
                mac.update(&body);
                let tag = mac.finalize().into_bytes();
                body.pop();
                body.extend_from_slice(format!(",\"mac\":\"{}\"}}", hex::encode(tag)).as_bytes());
                line = body;
                prev = Some(Sha256::digest(&line).into());
            }
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        fs::write(&segment, out).unwrap();
    }
}

#[test]
fn checkpoints_are_written_every_n_records_and_at_shutdown_with_the_roots_of_the_records() {
    let (dir, _) = signed_log(25, 10);
    // 1 start record + 25 events + 1 stop record.
    assert_eq!(sizes(dir.path()), [10, 20, 27]);
    let leaves = leaves(dir.path());
    assert_eq!(leaves.len(), 27);
    for (size, path) in stored(dir.path()) {
        let note = fs::read_to_string(&path).unwrap();
        let text = note.split("\n\n").next().unwrap().to_owned() + "\n";
        let (origin, in_note, root, _) = spec::parse_checkpoint(&text).unwrap();
        assert_eq!(origin, format!("sealtrail/{}", key().id().as_str()));
        assert_eq!(in_note, size);
        let expected = merkle::tree_root(size, &leaves).unwrap();
        assert_eq!(root, expected.0, "root of checkpoint {size}");
    }
}

#[test]
fn a_checkpoint_is_written_once_the_interval_passed_since_records_were_added() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer(&key());
    // Never by count; a zero interval makes every new record due by time.
    let config = LoggerConfig::new(dir.path())
        .checkpoint_signer(copy(&signer))
        .checkpoint_every_records(u64::MAX)
        .checkpoint_interval(Duration::ZERO);
    write(&AuditLogger::open(config, key()).unwrap(), 3);
    // The start record is checkpointed with the first event's batch, or on
    // its own if the writer woke up in between.
    let got = sizes(dir.path());
    assert!(got.ends_with(&[3, 4, 5]), "{got:?}");
    // And with a long interval, only the shutdown checkpoint is written.
    let (long, _) = signed_log(3, u64::MAX);
    assert_eq!(sizes(long.path()), [5]);
}

#[test]
fn stored_checkpoints_verify_with_an_independent_signed_note_verifier() {
    let (dir, signer) = signed_log(12, 5);
    let trusted = spec::parse_verifier_key(&signer.verifier_key()).unwrap();
    let other = spec::parse_verifier_key(&self::signer(&key()).verifier_key()).unwrap();
    assert!(!stored(dir.path()).is_empty());
    for (_, path) in stored(dir.path()) {
        let note = fs::read(&path).unwrap();
        let text = spec::verify(&note, &[&trusted]).unwrap();
        spec::parse_checkpoint(&text).unwrap();
        assert!(spec::verify(&note, &[&other]).is_err());
    }
}

#[test]
fn checkpoints_are_owner_only_and_never_taken_for_segments() {
    use std::os::unix::fs::MetadataExt;
    let (dir, signer) = signed_log(12, 5);
    let cp_dir = dir.path().join(logtree::CHECKPOINT_DIR);
    assert_eq!(fs::metadata(&cp_dir).unwrap().mode() & 0o777, 0o700);
    for (size, path) in stored(dir.path()) {
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            path.file_name().unwrap(),
            logtree::checkpoint_name(size).as_str()
        );
    }
    assert_eq!(segments(dir.path()).len(), 1);
    let report = check(dir.path(), &trusting(&signer));
    assert!(report.is_intact(), "{:?}", report.finding);
    assert_eq!(report.segments, 1);
    assert_eq!(report.records, 14);
}

#[test]
fn a_restarted_logger_resumes_the_tree_across_segments_and_the_log_still_verifies() {
    let (dir, signer) = signed_log(7, 4);
    // Small segments, so the second run rotates and the third rebuilds the
    // tree from several files.
    let small = || {
        LoggerConfig::new(dir.path())
            .checkpoint_signer(copy(&signer))
            .checkpoint_every_records(4)
            .max_segment_bytes(1024)
    };
    write(&AuditLogger::open(small(), key()).unwrap(), 3);
    write(&AuditLogger::open(small(), key()).unwrap(), 1);
    assert!(segments(dir.path()).len() > 2);
    // 9 records, then a start, 3 events and a stop, then a start, an event
    // and a stop: 17, and a manifest opening each segment after the first.
    let total = 17 + segments(dir.path()).len() as u64 - 1;
    let leaves = leaves(dir.path());
    assert_eq!(leaves.len() as u64, total);
    let got = sizes(dir.path());
    assert_eq!(got.last(), Some(&total), "{got:?}");
    assert!(got.contains(&9), "{got:?}");

    let report = check(dir.path(), &trusting(&signer));
    assert!(report.is_intact(), "{:?}", report.finding);
    let tree = tree_report(&report);
    assert_eq!(tree.checked, got.len() as u64);
    assert!(tree.signatures_checked);
    assert_eq!(tree.tree_size, total);
    assert_eq!(
        tree.root,
        merkle::tree_root(total, &leaves).unwrap().to_hex()
    );
}

#[test]
fn a_logger_refuses_to_sign_on_top_of_a_log_cut_below_its_newest_checkpoint() {
    let (dir, signer) = signed_log(5, 100);
    cut_records(dir.path(), 2, false);
    let config = LoggerConfig::new(dir.path()).checkpoint_signer(copy(&signer));
    let err = AuditLogger::open(config, key()).unwrap_err();
    assert!(matches!(err, OpenError::CheckpointMismatch { .. }), "{err}");
    assert!(err.to_string().contains("fewer than the 7"), "{err}");
}

#[test]
fn a_logger_refuses_to_sign_on_top_of_a_rewritten_history() {
    let (dir, signer) = signed_log(5, 100);
    rewrite_with_stolen_key(dir.path(), 3);
    let config = LoggerConfig::new(dir.path()).checkpoint_signer(copy(&signer));
    let err = AuditLogger::open(config, key()).unwrap_err();
    assert!(err.to_string().contains("rewritten"), "{err}");
}

/// The chain alone cannot see records cut off the end: the shorter log is a
/// complete, valid log. Only a checkpoint kept elsewhere remembers the head.
#[test]
fn cutting_records_off_the_end_is_caught_with_an_anchor_and_not_without() {
    let (dir, signer) = signed_log(10, 4);
    let anchor = export_anchor(dir.path(), &signer);
    assert_eq!(anchor.checkpoint().size(), 12);
    let left = cut_records(dir.path(), 3, true);
    assert_eq!(left, 9);

    assert!(common::verify(dir.path(), &key()).is_intact());
    let without = check(dir.path(), &trusting(&signer));
    assert!(without.is_intact(), "{:?}", without.finding);

    let with = check(dir.path(), &trusting(&signer).anchor(anchor));
    let finding = with.finding.as_ref().unwrap();
    assert_eq!(finding.kind, FindingKind::TruncatedBelowAnchor, "{finding}");
    assert_eq!(finding.expected_seq, 10);
    assert!(!tree_report(&with).anchor_checked);
}

#[test]
fn cutting_records_but_leaving_the_checkpoints_is_caught_by_the_stored_checkpoints() {
    let (dir, signer) = signed_log(10, 4);
    cut_records(dir.path(), 3, false);
    let report = check(dir.path(), &trusting(&signer));
    let finding = report.finding.unwrap();
    assert_eq!(
        finding.kind,
        FindingKind::TruncatedBelowCheckpoint,
        "{finding}"
    );
}

#[test]
fn a_rewrite_with_the_stolen_record_key_passes_the_chain_but_not_the_anchor_or_checkpoints() {
    let (dir, signer) = signed_log(10, 4);
    let anchor = export_anchor(dir.path(), &signer);
    let all = records(dir.path());
    rewrite_with_stolen_key(dir.path(), 6);
    assert_ne!(records(dir.path())[5].bytes, all[5].bytes);

    // The hash chain and every mac check out: the attack is complete.
    assert!(common::verify(dir.path(), &key()).is_intact());

    // The stored checkpoint at 8 (the first at or after record 6) is not.
    let stored = check(dir.path(), &trusting(&signer));
    let finding = stored.finding.unwrap();
    assert_eq!(
        finding.kind,
        FindingKind::CheckpointRootMismatch,
        "{finding}"
    );
    assert_eq!(finding.expected_seq, 8);

    // With the stored checkpoints gone too, the anchor still catches it.
    fs::remove_dir_all(dir.path().join(logtree::CHECKPOINT_DIR)).unwrap();
    let anchored = check(dir.path(), &trusting(&signer).anchor(anchor));
    let finding = anchored.finding.unwrap();
    assert_eq!(
        finding.kind,
        FindingKind::CheckpointInconsistentWithAnchor,
        "{finding}"
    );
    assert_eq!(finding.expected_seq, 12);
}

#[test]
fn a_forged_checkpoint_signature_is_reported_with_a_trusted_key_only() {
    let (dir, signer) = signed_log(10, 4);
    let (size, path) = stored(dir.path()).remove(1);
    // Same origin and key name, right root, another key.
    let forger = self::signer(&key());
    let root = merkle::tree_root(size, &leaves(dir.path())).unwrap();
    let checkpoint =
        audit_logging::checkpoint::Checkpoint::new(&origin_for(key().id().as_str()), size, root.0)
            .unwrap();
    fs::write(&path, forger.sign_checkpoint(&checkpoint).unwrap()).unwrap();

    let report = check(dir.path(), &trusting(&signer));
    let finding = report.finding.unwrap();
    assert_eq!(
        finding.kind,
        FindingKind::CheckpointBadSignature,
        "{finding}"
    );
    assert_eq!(finding.expected_seq, size);

    // Without a trusted key only roots are checked, and this root is right.
    let unchecked = check(dir.path(), &CheckpointOptions::new());
    assert!(unchecked.is_intact());
    assert!(!tree_report(&unchecked).signatures_checked);

    // A flipped byte in the genuine signature is caught too.
    let mut genuine = signer.sign_checkpoint(&checkpoint).unwrap().into_bytes();
    let last = genuine.len() - 10;
    genuine[last] = if genuine[last] == b'A' { b'B' } else { b'A' };
    fs::write(&path, genuine).unwrap();
    let flipped = check(dir.path(), &trusting(&signer)).finding.unwrap();
    assert_eq!(
        flipped.kind,
        FindingKind::CheckpointBadSignature,
        "{flipped}"
    );
}

#[test]
fn a_log_that_extends_its_anchor_verifies_and_says_so() {
    let (dir, signer) = signed_log(3, 100);
    let anchor = export_anchor(dir.path(), &signer);
    write(&open(dir.path(), &key(), &signer, 100), 4);
    let report = check(dir.path(), &trusting(&signer).anchor(anchor));
    assert!(report.is_intact(), "{:?}", report.finding);
    let tree = tree_report(&report);
    assert_eq!(tree.anchor_size, Some(5));
    assert!(tree.anchor_checked);
    assert_eq!(tree.tree_size, 11);
}

#[test]
fn an_anchor_of_another_log_or_signed_by_another_key_is_refused() {
    let (dir, signer) = signed_log(3, 100);
    let (_, latest) = logtree::latest_checkpoint(dir.path()).unwrap().unwrap();
    let other_log = common::other_key();
    let err = Anchor::load(&latest, other_log.id().as_str(), &signer.verifier()).unwrap_err();
    assert!(matches!(err, AnchorError::Checkpoint(_)), "{err}");
    let other_signer = self::signer(&key());
    let err = Anchor::load(&latest, key().id().as_str(), &other_signer.verifier()).unwrap_err();
    assert!(matches!(err, AnchorError::Checkpoint(_)), "{err}");
}

#[test]
fn a_log_written_without_a_signer_has_no_checkpoints_and_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    common::write_log(dir.path(), &key(), 3, 1 << 20);
    assert!(stored(dir.path()).is_empty());
    let report = check(dir.path(), &CheckpointOptions::new());
    assert!(report.is_intact());
    assert_eq!(tree_report(&report).checked, 0);
    assert_eq!(tree_report(&report).tree_size, 5);
}

#[test]
fn an_inclusion_proof_of_every_record_checks_out_offline_and_only_for_that_record() {
    let (dir, signer) = signed_log(10, 4);
    let trusted = signer.verifier();
    let lines = records(dir.path());
    for seq in 1..=12u64 {
        let proof = logtree::prove_inclusion(dir.path(), seq).unwrap();
        assert_eq!(proof.tree_size, 12);
        assert_eq!(proof.record.as_bytes(), lines[seq as usize - 1].bytes);
        let file = serde_json::to_vec(&logtree::Proof::Inclusion(proof)).unwrap();
        let summary = logtree::check_proof(&file, &trusted).unwrap();
        assert!(
            summary.statement.contains(&format!("record {seq} ")),
            "{summary:?}"
        );
    }

    // Another record under this record's proof.
    let mut swapped = logtree::prove_inclusion(dir.path(), 3).unwrap();
    let other = logtree::prove_inclusion(dir.path(), 4).unwrap();
    swapped.record = other.record;
    swapped.leaf_hash = other.leaf_hash;
    swapped.seq = 4;
    swapped.leaf_index = 3;
    let file = serde_json::to_vec(&logtree::Proof::Inclusion(swapped)).unwrap();
    let err = logtree::check_proof(&file, &trusted).unwrap_err();
    assert!(matches!(err, logtree::ProofCheckError::Failed(_)), "{err}");

    // A right proof under a key that did not sign it.
    let proof = logtree::prove_inclusion(dir.path(), 3).unwrap();
    let file = serde_json::to_vec(&logtree::Proof::Inclusion(proof)).unwrap();
    let stranger = self::signer(&key()).verifier();
    let err = logtree::check_proof(&file, &stranger).unwrap_err();
    assert!(matches!(err, logtree::ProofCheckError::Failed(_)), "{err}");

    // Not JSON at all is not a verdict.
    let err = logtree::check_proof(b"{\"type\":\"nonsense\"}", &trusted).unwrap_err();
    assert!(
        matches!(err, logtree::ProofCheckError::Malformed(_)),
        "{err}"
    );
}

#[test]
fn a_consistency_proof_between_stored_checkpoints_checks_out_and_an_altered_one_does_not() {
    let (dir, signer) = signed_log(10, 4);
    assert_eq!(sizes(dir.path()), [4, 8, 12]);
    let trusted = signer.verifier();
    for (old, new) in [(4, 8), (4, 12), (8, 12), (12, 12)] {
        let proof = logtree::prove_consistency(dir.path(), old, new).unwrap();
        let file = serde_json::to_vec(&logtree::Proof::Consistency(proof)).unwrap();
        logtree::check_proof(&file, &trusted).unwrap();
    }
    let mut proof = logtree::prove_consistency(dir.path(), 4, 12).unwrap();
    proof.proof[0].0[0] ^= 1;
    let file = serde_json::to_vec(&logtree::Proof::Consistency(proof)).unwrap();
    let err = logtree::check_proof(&file, &trusted).unwrap_err();
    assert!(matches!(err, logtree::ProofCheckError::Failed(_)), "{err}");

    let err = logtree::prove_consistency(dir.path(), 5, 12).unwrap_err();
    assert!(err.to_string().contains("stored sizes: 4, 8, 12"), "{err}");
}

#[test]
fn no_proof_is_made_for_an_uncovered_record_or_from_a_rewritten_log() {
    let (dir, _) = signed_log(10, 4);
    let err = logtree::prove_inclusion(dir.path(), 13).unwrap_err();
    assert!(matches!(err, logtree::ProveError::NotCovered(_)), "{err}");
    rewrite_with_stolen_key(dir.path(), 2);
    let err = logtree::prove_inclusion(dir.path(), 5).unwrap_err();
    assert!(matches!(err, logtree::ProveError::Mismatch(_)), "{err}");
    let err = logtree::prove_consistency(dir.path(), 4, 8).unwrap_err();
    assert!(matches!(err, logtree::ProveError::Mismatch(_)), "{err}");
}

/// A file planted in `checkpoints/` under a size past the end of the log.
fn plant(dir: &Path, size: u64, bytes: &[u8]) -> PathBuf {
    let path = dir
        .join(logtree::CHECKPOINT_DIR)
        .join(logtree::checkpoint_name(size));
    fs::write(&path, bytes).unwrap();
    path
}

/// A well-formed checkpoint of this log for `size` records, signed by a key
/// of the right name that is not the log's.
fn forged(size: u64) -> String {
    let checkpoint =
        audit_logging::checkpoint::Checkpoint::new(&origin_for(key().id().as_str()), size, [7; 32])
            .unwrap();
    signer(&key()).sign_checkpoint(&checkpoint).unwrap()
}

#[test]
fn a_planted_checkpoint_past_the_end_is_invalid_not_a_truncation() {
    let (dir, signer) = signed_log(5, 100);
    let (_, genuine) = stored(dir.path()).pop().unwrap();
    let cases: [(&str, Vec<u8>); 2] = [
        ("junk", b"junk".to_vec()),
        (
            "a real checkpoint under a larger size",
            fs::read(&genuine).unwrap(),
        ),
    ];
    for (what, bytes) in cases {
        let planted = plant(dir.path(), 999, &bytes);
        for options in [CheckpointOptions::new(), trusting(&signer)] {
            let finding = check(dir.path(), &options).finding.unwrap();
            assert_eq!(
                finding.kind,
                FindingKind::CheckpointInvalid,
                "{what}: {finding}"
            );
            assert!(!finding.detail.contains("cut off"), "{what}: {finding}");
        }
        fs::remove_file(planted).unwrap();
    }
}

#[test]
fn a_planted_checkpoint_past_the_end_signed_by_another_key_is_a_bad_signature() {
    let (dir, signer) = signed_log(5, 100);
    plant(dir.path(), 999, forged(999).as_bytes());
    let finding = check(dir.path(), &trusting(&signer)).finding.unwrap();
    assert_eq!(
        finding.kind,
        FindingKind::CheckpointBadSignature,
        "{finding}"
    );
}

#[test]
fn a_logger_opens_past_a_planted_or_forged_checkpoint_and_verify_still_reports_it() {
    let (dir, signer) = signed_log(5, 100);
    for bytes in [b"junk".to_vec(), forged(999).into_bytes()] {
        let planted = plant(dir.path(), 999, &bytes);
        let logger = open(dir.path(), &key(), &signer, 100);
        write(&logger, 1);
        let finding = check(dir.path(), &trusting(&signer)).finding.unwrap();
        assert!(
            matches!(
                finding.kind,
                FindingKind::CheckpointInvalid | FindingKind::CheckpointBadSignature
            ),
            "{finding}"
        );
        fs::remove_file(planted).unwrap();
        let report = check(dir.path(), &trusting(&signer));
        assert!(report.is_intact(), "{:?}", report.finding);
    }
}

#[test]
fn deleting_every_segment_is_a_truncation_when_checkpoints_or_an_anchor_prove_records() {
    let (dir, signer) = signed_log(5, 100);
    let anchor = export_anchor(dir.path(), &signer);
    for segment in segments(dir.path()) {
        fs::remove_file(segment).unwrap();
    }
    let finding = check(dir.path(), &trusting(&signer)).finding.unwrap();
    assert_eq!(
        finding.kind,
        FindingKind::TruncatedBelowCheckpoint,
        "{finding}"
    );
    assert_eq!(finding.expected_seq, 1);

    fs::remove_dir_all(dir.path().join(logtree::CHECKPOINT_DIR)).unwrap();
    let finding = check(dir.path(), &trusting(&signer).anchor(anchor))
        .finding
        .unwrap();
    assert_eq!(finding.kind, FindingKind::TruncatedBelowAnchor, "{finding}");
    assert_eq!(finding.expected_seq, 1);

    // Nothing says records ever existed: not a trail at all.
    let err =
        verify_dir_with_checkpoints(dir.path(), &key(), &trusting(&signer), |_| {}).unwrap_err();
    assert!(
        matches!(err, audit_logging::verify::VerifyError::Empty(_)),
        "{err}"
    );
}

#[test]
fn a_consistency_proof_asked_with_the_sizes_out_of_order_is_a_usage_error_not_a_mismatch() {
    let (dir, _) = signed_log(10, 4);
    let err = logtree::prove_consistency(dir.path(), 8, 4).unwrap_err();
    assert!(
        matches!(err, logtree::ProveError::SizesOutOfOrder { old: 8, new: 4 }),
        "{err}"
    );
}
