//! `sealtrail retention` through the binary: it retires what an exported
//! anchor covers, `verify` and `query` accept the trail afterwards, and a
//! trail that does not verify, or segments deleted behind a made-up base,
//! exit 1.

mod common;

use common::sealtrail;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use audit_logging::checkpoint::CheckpointSigner;
use audit_logging::{AuditEvent, AuditKey, AuditLogger, LoggerConfig};

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn json(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    audit_logging::list_segments(&dir.join("sealtrail-audit"))
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// keygen, then a trail of several small segments written with the keys
/// keygen made (the binary's segments are 64 MiB), then an exported
/// anchor. Returns the verifier key.
fn trail_with_anchor(dir: &Path) -> String {
    let out = sealtrail(dir).arg("keygen").assert().success();
    let vkey = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint verifier key: "))
        .unwrap()
        .to_owned();
    let key = AuditKey::load(&dir.join("sealtrail.key")).unwrap();
    let signer = CheckpointSigner::load(&dir.join("sealtrail-checkpoint.key")).unwrap();
    let config = LoggerConfig::new(dir.join("sealtrail-audit"))
        .max_segment_bytes(1500)
        .checkpoint_signer(signer);
    let logger = AuditLogger::open(config, key).unwrap();
    for i in 0..30 {
        logger
            .emit_sync(AuditEvent::TaskSubmitted {
                timestamp: chrono::Utc::now(),
                actor: "tester".into(),
                task_id: format!("t{i}").into(),
                model_ref: "minilm".into(),
                input_bytes: i,
            })
            .unwrap();
    }
    logger.shutdown().unwrap();
    assert!(segments(dir).len() >= 4);
    sealtrail(dir)
        .args(["checkpoint", "export", "--out", "anchor.note"])
        .assert()
        .success();
    vkey
}

fn retention(dir: &Path, vkey: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    sealtrail(dir)
        .args([
            "retention",
            "--json",
            "--anchor",
            "anchor.note",
            "--checkpoint-key",
            vkey,
        ])
        .args(extra)
        .assert()
}

#[test]
fn retention_retires_covered_segments_and_the_trail_still_verifies_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let before = segments(dir.path());
    let out = retention(dir.path(), &vkey, &["--older-than", "0s"]).success();
    let report = json(&out);
    assert_eq!(report["status"], "retired", "{report}");
    let retired = report["retention"]["retired"].as_array().unwrap();
    assert_eq!(retired.len(), before.len() - 1);
    for path in &before[..before.len() - 1] {
        assert!(!path.exists(), "{} was not retired", path.display());
    }

    let out = sealtrail(dir.path())
        .args([
            "verify",
            "--anchor",
            "anchor.note",
            "--checkpoint-key",
            &vkey,
        ])
        .assert()
        .success();
    let text = stdout(&out);
    assert!(text.contains("INTACT"), "{text}");
    assert!(text.contains("were retired"), "{text}");
    let out = sealtrail(dir.path())
        .args(["query", "--json", "--type", "audit.segments_retired"])
        .assert()
        .success();
    assert_eq!(stdout(&out).lines().count(), 1);
}

#[test]
fn a_dry_run_and_a_retention_time_not_yet_reached_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let before = segments(dir.path());
    let out = retention(dir.path(), &vkey, &["--older-than", "0s", "--dry-run"]).success();
    let report = json(&out);
    assert_eq!(report["status"], "dry_run");
    assert_eq!(
        report["retention"]["retired"].as_array().unwrap().len(),
        before.len() - 1
    );
    assert_eq!(segments(dir.path()), before);

    let out = retention(dir.path(), &vkey, &["--older-than", "30d"]).success();
    assert_eq!(json(&out)["status"], "nothing_retired");
    assert_eq!(segments(dir.path())[..before.len()], before[..]);
    assert!(!dir.path().join("sealtrail-audit/retired.json").exists());
}

#[test]
fn archived_segments_are_owner_only_in_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let out = retention(
        dir.path(),
        &vkey,
        &["--older-than", "0s", "--archive", "archive"],
    )
    .success();
    let report = json(&out);
    let archive = dir.path().join("archive");
    assert_eq!(fs::metadata(&archive).unwrap().mode() & 0o777, 0o700);
    for s in report["retention"]["retired"].as_array().unwrap() {
        let moved = archive.join(s["segment"].as_str().unwrap());
        assert_eq!(fs::metadata(&moved).unwrap().mode() & 0o777, 0o600);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            fs::read(&moved).unwrap(),
        ));
        assert_eq!(s["sha256"], digest);
    }
    sealtrail(dir.path())
        .args([
            "verify",
            "--anchor",
            "anchor.note",
            "--checkpoint-key",
            &vkey,
        ])
        .assert()
        .success();
}

#[test]
fn a_tampered_trail_exits_1_and_nothing_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let before = segments(dir.path());
    let text = fs::read_to_string(&before[1]).unwrap();
    fs::write(&before[1], text.replacen("tester", "mallor", 1)).unwrap();
    let out = retention(dir.path(), &vkey, &["--older-than", "0s"]).code(1);
    assert_eq!(json(&out)["status"], "tampered");
    assert_eq!(segments(dir.path()), before);
}

#[test]
fn segments_deleted_behind_a_copied_base_make_verify_exit_1() {
    // Retire one trail, then delete another trail's oldest segments and put
    // a base there: the other trail has no retirement record for it.
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let audit = dir.path().join("sealtrail-audit");
    let pristine = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&audit).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), pristine.path().join(entry.file_name())).unwrap();
        }
    }
    retention(dir.path(), &vkey, &["--older-than", "0s"]).success();
    let base = fs::read(audit.join("retired.json")).unwrap();
    let kept_from = segments(dir.path())[0].file_name().unwrap().to_owned();

    for (first, path) in audit_logging::list_segments(pristine.path()).unwrap() {
        if path.file_name().unwrap() < kept_from.as_os_str() {
            fs::remove_file(&path).unwrap();
        } else {
            assert!(first > 1);
        }
    }
    fs::write(pristine.path().join("retired.json"), base).unwrap();
    let out = sealtrail(dir.path())
        .args(["verify", "--json", "--audit-dir"])
        .arg(pristine.path())
        .assert()
        .code(1);
    let report = json(&out);
    assert_eq!(
        report["report"]["finding"]["kind"], "retirement_unrecorded",
        "{report}"
    );
}

#[test]
fn a_refused_archive_is_refused_before_anything_is_recorded() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let before = segments(dir.path());
    let open = dir.path().join("open-archive");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    fs::create_dir(dir.path().join("real-archive")).unwrap();
    std::os::unix::fs::symlink("real-archive", dir.path().join("linked-archive")).unwrap();
    for archive in ["open-archive", "linked-archive"] {
        retention(
            dir.path(),
            &vkey,
            &["--older-than", "0s", "--archive", archive],
        )
        .code(2);
        assert_eq!(segments(dir.path()), before, "{archive}");
        assert!(
            !dir.path().join("sealtrail-audit/retired.json").exists(),
            "{archive}"
        );
        let out = sealtrail(dir.path())
            .args(["query", "--json", "--type", "audit.segments_retired"])
            .assert()
            .success();
        assert_eq!(stdout(&out), "", "{archive}");
    }
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
    assert_eq!(
        fs::read_dir(dir.path().join("real-archive"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn segments_left_by_an_interrupted_archiving_run_go_where_its_record_says() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    let before = segments(dir.path());
    let archive = dir.path().join("archive");
    fs::create_dir(&archive).unwrap();
    fs::set_permissions(
        &archive,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // A file of the second segment's name in the archive stops the run
    // after its record is written and the first segment is moved.
    let blocker = archive.join(before[1].file_name().unwrap());
    fs::write(&blocker, b"not a segment").unwrap();
    let archive_arg = archive.display().to_string();
    retention(
        dir.path(),
        &vkey,
        &["--older-than", "0s", "--archive", &archive_arg],
    )
    .code(2);
    assert!(!before[0].exists());
    assert!(before[1].exists());

    // The record says "archived": a run that would delete them is refused.
    let out = retention(dir.path(), &vkey, &["--older-than", "0s"]).code(2);
    let report = json(&out);
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("interrupted retention"), "{report}");
    assert!(
        error.contains(&format!("--archive {archive_arg}")),
        "{report}"
    );
    for path in &before[1..] {
        assert!(path.exists(), "{} was deleted", path.display());
    }

    fs::remove_file(&blocker).unwrap();
    retention(
        dir.path(),
        &vkey,
        &["--older-than", "0s", "--archive", &archive_arg],
    )
    .success();
    for path in &before[..before.len() - 1] {
        assert!(!path.exists(), "{} is still there", path.display());
        assert!(
            archive.join(path.file_name().unwrap()).exists(),
            "{}",
            path.display()
        );
    }
    sealtrail(dir.path())
        .args([
            "verify",
            "--anchor",
            "anchor.note",
            "--checkpoint-key",
            &vkey,
        ])
        .assert()
        .success();
}

#[test]
fn retention_needs_an_anchor_and_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = sealtrail(dir.path())
        .args(["retention", "--help"])
        .assert()
        .success();
    let help = stdout(&out);
    for word in [
        "--older-than",
        "--anchor",
        "--archive",
        "--dry-run",
        "audit.segments_retired",
    ] {
        assert!(help.contains(word), "{word} missing from {help}");
    }
    sealtrail(dir.path())
        .args(["retention", "--older-than", "30d", "--checkpoint-key", "x"])
        .assert()
        .code(2);
    sealtrail(dir.path())
        .args([
            "retention",
            "--older-than",
            "soon",
            "--anchor",
            "a",
            "--checkpoint-key",
            "x",
        ])
        .assert()
        .code(2);
}

#[test]
fn retention_json_reports_a_missing_anchor_or_a_bad_verifier_key_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = trail_with_anchor(dir.path());
    fs::rename(
        dir.path().join("anchor.note"),
        dir.path().join("moved.note"),
    )
    .unwrap();
    for key in [vkey.as_str(), "not-a-verifier-key"] {
        let out = retention(dir.path(), key, &["--older-than", "1d"]).code(2);
        let report = json(&out);
        assert_eq!(report["status"], "error", "{report}");
        assert!(
            report["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{report}"
        );
    }
}
