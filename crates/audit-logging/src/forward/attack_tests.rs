//! The strong attacker: holds the writer key of the current epoch (copied
//! from disk, as a thief of the host would), rewrites a record, and
//! recomputes every later hash link and authenticator with what they hold.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::record::{self, GENESIS_HASH, RawRecord};
use crate::verify::{FindingKind, verify_dir};
use crate::{AuditEvent, AuditLogger, LoggerConfig, Severity, segment_name};

const EPOCH_RECORDS: u64 = 5;

/// A one-segment log of 30 records in epochs of five, and the writer key a
/// thief copies at the end (the current epoch's).
fn log_and_stolen_key(dir: &Path, initial: &AuditKey) -> EpochKey {
    let config = LoggerConfig::new(dir).epoch(EPOCH_RECORDS, Duration::from_secs(3600));
    let logger = AuditLogger::open(config, initial.clone()).unwrap();
    for i in 0..29 {
        logger
            .emit_sync(AuditEvent::SecurityIncident {
                timestamp: chrono::Utc::now(),
                kind: "probe".into(),
                description: format!("event {i}").into(),
                severity: Severity::Low,
            })
            .unwrap();
    }
    logger.flush().unwrap();
    let stolen = EpochKey::load(&dir.join(WRITER_KEY_FILE)).unwrap();
    drop(logger);
    stolen
}

fn lines(dir: &Path) -> Vec<Vec<u8>> {
    fs::read(dir.join(segment_name(1)))
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// How the attacker signs what they rewrite.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    /// Keep each record's epoch, mac it with the stolen key's bytes.
    KeepEpochs,
    /// Move every rewritten record into the stolen key's epoch.
    StolenEpoch,
    /// As `StolenEpoch`, with a handover mac forged from the stolen key.
    StolenEpochWithHandover,
}

/// Rewrites record `target` (changing its event) and re-links and re-macs
/// every record from there on; returns the new lines.
fn rewrite(lines: &[Vec<u8>], target: u64, stolen: &EpochKey, forgery: Forgery) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut prev = GENESIS_HASH;
    for line in lines {
        let rec = RawRecord::parse(line).unwrap();
        if rec.seq < target {
            prev = record::line_hash(line);
            out.push(line.clone());
            continue;
        }
        let mut event = rec.event.get().to_owned();
        if rec.seq == target {
            event = event.replace("probe", "benign");
        }
        let (key, handover) = match forgery {
            Forgery::KeepEpochs => {
                let key = best_key(stolen, rec.epoch);
                let handover = rec.is_handover().then(|| best_key(stolen, rec.epoch - 1));
                (key, handover)
            }
            Forgery::StolenEpoch => (stolen.clone(), None),
            Forgery::StolenEpochWithHandover => {
                let handover = (rec.seq == target).then(|| stolen.clone());
                (stolen.clone(), handover)
            }
        };
        let forged = record::encode(rec.seq, rec.ts, &key, handover.as_ref(), &prev, &event);
        prev = record::line_hash(&forged);
        out.push(forged);
    }
    out
}

/// The attacker's best key for `epoch`: the real one for the stolen epoch
/// and later (the chain runs forward), a guess made of the stolen bytes for
/// earlier epochs (it cannot run backward).
fn best_key(stolen: &EpochKey, epoch: u64) -> EpochKey {
    let mut key = stolen.clone();
    if epoch < key.epoch {
        key.epoch = epoch;
    }
    while key.epoch < epoch {
        key.evolve().unwrap();
    }
    key
}

fn write_lines(dir: &Path, lines: &[Vec<u8>]) {
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    fs::write(dir.join(segment_name(1)), text).unwrap();
}

#[test]
fn a_thief_of_the_writer_key_cannot_rewrite_an_earlier_epoch() {
    for forgery in [
        Forgery::KeepEpochs,
        Forgery::StolenEpoch,
        Forgery::StolenEpochWithHandover,
    ] {
        for target in [2, 7, 12] {
            let dir = tempfile::tempdir().unwrap();
            let initial = AuditKey::generate().unwrap();
            let stolen = log_and_stolen_key(dir.path(), &initial);
            let original = lines(dir.path());
            let target_epoch = RawRecord::parse(&original[target as usize - 1])
                .unwrap()
                .epoch;
            assert!(
                target_epoch < stolen.epoch(),
                "the target is in an earlier epoch"
            );

            write_lines(dir.path(), &rewrite(&original, target, &stolen, forgery));
            let report = verify_dir(dir.path(), &initial).unwrap();
            let finding = report
                .finding
                .unwrap_or_else(|| panic!("{forgery:?} rewrite of record {target} went unnoticed"));
            assert_eq!(finding.expected_seq, target, "{forgery:?}: {finding}");
            assert!(
                matches!(
                    finding.kind,
                    FindingKind::Modified | FindingKind::KeyEvolutionMismatch
                ),
                "{forgery:?}: {finding}"
            );
        }
    }
}

/// The same attacker, rewriting inside the epoch whose key they hold,
/// succeeds: that window is what forward security leaves open, and it
/// shows the attacker above is competent, not clumsy.
#[test]
fn the_current_epoch_is_the_window_a_thief_can_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let initial = AuditKey::generate().unwrap();
    let stolen = log_and_stolen_key(dir.path(), &initial);
    let original = lines(dir.path());
    let last = original.len() as u64;
    let target = (1..=last)
        .rev()
        .find(|&seq| {
            let rec = RawRecord::parse(&original[seq as usize - 1]).unwrap();
            rec.epoch == stolen.epoch() && !rec.is_handover()
        })
        .unwrap();
    write_lines(
        dir.path(),
        &rewrite(&original, target, &stolen, Forgery::KeepEpochs),
    );
    assert!(verify_dir(dir.path(), &initial).unwrap().is_intact());
}

#[test]
fn every_epoch_after_the_first_opens_with_a_handover_the_verifier_checks() {
    let dir = tempfile::tempdir().unwrap();
    let initial = AuditKey::generate().unwrap();
    log_and_stolen_key(dir.path(), &initial);
    let original = lines(dir.path());
    let mut epochs = Vec::new();
    for line in &original {
        let rec = RawRecord::parse(line).unwrap();
        assert_eq!(
            rec.is_handover(),
            epochs.last().is_some_and(|&e| e != rec.epoch)
        );
        epochs.push(rec.epoch);
    }
    assert!(
        epochs.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
        "{epochs:?}"
    );
    assert!(*epochs.last().unwrap() >= 5, "{epochs:?}");

    // Strip the handover mac from one boundary record: refused there.
    let boundary = original
        .iter()
        .position(|l| RawRecord::parse(l).unwrap().is_handover());
    let boundary = boundary.unwrap();
    let text = String::from_utf8(original[boundary].clone()).unwrap();
    let start = text.find(",\"xmac\":\"").unwrap();
    let stripped = format!("{}{}", &text[..start], &text[start + 74..]);
    let mut tampered = original.clone();
    tampered[boundary] = stripped.into_bytes();
    write_lines(dir.path(), &tampered);
    let finding = verify_dir(dir.path(), &initial).unwrap().finding.unwrap();
    assert_eq!(finding.expected_seq, boundary as u64 + 1, "{finding}");
}
