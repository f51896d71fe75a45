//! `keygen`, `verify` and `query` against trails written by the library.

mod common;

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use audit_logging::{AuditEvent, AuditKey, AuditLogger, LoggerConfig};
use chrono::{TimeZone, Utc};

/// The binary; these tests give it absolute paths.
fn sealtrail() -> Command {
    Command::from_std(common::binary())
}

/// A key file and a trail with a few events of different types and days.
fn trail(dir: &Path) {
    let key_path = dir.join("k.key");
    sealtrail()
        .arg("keygen")
        .arg("--out")
        .arg(&key_path)
        .assert()
        .success();
    let key = AuditKey::load(&key_path).unwrap();
    let logger = AuditLogger::open(LoggerConfig::new(dir.join("audit")), key).unwrap();
    for day in 1..=3 {
        logger
            .emit_sync(AuditEvent::AuthFailure {
                timestamp: Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap(),
                attempted_actor: "mallory\u{1b}[2J".into(),
                method: "api-key".into(),
                source_ip: None,
                reason: "unknown key".into(),
            })
            .unwrap();
        logger
            .emit_sync(AuditEvent::TaskSubmitted {
                timestamp: Utc.with_ymd_and_hms(2026, 11, day, 13, 0, 0).unwrap(),
                actor: "alice".into(),
                task_id: format!("t-{day}").into(),
                model_ref: "minilm".into(),
                input_bytes: 10,
            })
            .unwrap();
    }
    logger.shutdown().unwrap();
}

fn args(dir: &Path) -> Vec<String> {
    vec![
        "--audit-dir".into(),
        dir.join("audit").display().to_string(),
        "--key".into(),
        dir.join("k.key").display().to_string(),
    ]
}

#[test]
fn keygen_refuses_to_overwrite_an_existing_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    sealtrail()
        .args(["keygen", "--out"])
        .arg(&key)
        .assert()
        .success();
    let before = fs::read(&key).unwrap();
    sealtrail()
        .args(["keygen", "--out"])
        .arg(&key)
        .assert()
        .code(2);
    assert_eq!(fs::read(&key).unwrap(), before);
}

/// `verify --json` of the trail in `dir`, which must exit 0.
fn intact_json(dir: &Path) -> serde_json::Value {
    let out = sealtrail()
        .arg("verify")
        .args(args(dir))
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn verify_exits_0_and_reports_intact_json() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let v = intact_json(dir.path());
    assert_eq!(v["status"], "intact");
    assert_eq!(v["report"]["records"], 8);
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn verify_warns_about_a_file_named_like_a_segment_that_it_did_not_read() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    fs::write(dir.path().join("audit/seg-abc.jsonl"), "not read").unwrap();
    let v = intact_json(dir.path());
    assert_eq!(v["status"], "intact");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(
        warnings[0].as_str().unwrap().contains("seg-abc.jsonl"),
        "{v}"
    );
}

#[test]
fn verify_warns_about_an_audit_directory_others_can_write_without_changing_the_verdict() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    fs::set_permissions(dir.path().join("audit"), fs::Permissions::from_mode(0o777)).unwrap();
    let v = intact_json(dir.path());
    assert_eq!(v["status"], "intact");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert!(warnings[0].as_str().unwrap().contains("chmod 700"), "{v}");
    let text = sealtrail()
        .arg("verify")
        .args(args(dir.path()))
        .assert()
        .success();
    let text = String::from_utf8(text.get_output().stdout.clone()).unwrap();
    assert!(text.contains("warning: the audit directory"), "{text}");
    assert!(text.contains("mode 0777"), "{text}");
}

#[test]
fn verify_exits_1_and_names_the_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let seg = dir
        .path()
        .join("audit")
        .join(audit_logging::segment_name(1));
    let text = fs::read_to_string(&seg).unwrap();
    fs::write(&seg, text.replacen("\"t-2\"", "\"t-9\"", 1)).unwrap();
    let out = sealtrail()
        .arg("verify")
        .args(args(dir.path()))
        .arg("--json")
        .assert()
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["status"], "tampered");
    assert_eq!(v["report"]["finding"]["kind"], "modified");
    assert_eq!(v["report"]["finding"]["expected_seq"], 5);
}

#[test]
fn verify_exits_2_on_missing_key_or_directory_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = sealtrail()
        .arg("verify")
        .args(args(dir.path()))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("sealtrail keygen"), "{err}");
    trail(dir.path());
    let mut a = args(dir.path());
    a[1] = dir.path().join("nope").display().to_string();
    sealtrail().arg("verify").args(a).assert().code(2);
}

#[test]
fn query_filters_by_type_severity_and_time_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let run = |extra: &[&str]| -> Vec<serde_json::Value> {
        let out = sealtrail()
            .arg("query")
            .args(args(dir.path()))
            .arg("--json")
            .args(extra)
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(run(&[]).len(), 8);
    let failures = run(&["--type", "auth.failure"]);
    assert_eq!(failures.len(), 3);
    assert!(failures.iter().all(|r| r["type"] == "auth.failure"));
    assert_eq!(run(&["--type", "task."]).len(), 3);
    assert_eq!(run(&["--severity", "high"]).len(), 3);
    let ranged = run(&["--since", "2026-11-02", "--until", "2026-11-03"]);
    assert_eq!(ranged.len(), 2);
    assert_eq!(run(&["--limit", "2"]).len(), 2);
    // Hostile characters come out escaped, never raw.
    assert_eq!(failures[0]["event"]["attempted_actor"], "mallory\\u{1b}[2J");
}

#[test]
fn query_table_never_prints_raw_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let out = sealtrail()
        .arg("query")
        .args(args(dir.path()))
        .assert()
        .success();
    let stdout = &out.get_output().stdout;
    assert!(!stdout.contains(&0x1b), "raw ESC reached the terminal");
    let text = String::from_utf8_lossy(stdout);
    assert!(text.contains("auth.failure"));
    assert_eq!(
        text.lines().count(),
        9,
        "header and one line per event:\n{text}"
    );
}

#[test]
fn query_rejects_bad_filters_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    sealtrail()
        .arg("query")
        .args(args(dir.path()))
        .args(["--severity", "urgent"])
        .assert()
        .code(2);
    sealtrail()
        .arg("query")
        .args(args(dir.path()))
        .args(["--since", "yesterday"])
        .assert()
        .code(2);
}

#[test]
fn query_with_key_stops_with_exit_1_at_a_modified_record() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let seg = dir
        .path()
        .join("audit")
        .join(audit_logging::segment_name(1));
    let text = fs::read_to_string(&seg).unwrap();
    fs::write(&seg, text.replacen("\"alice\"", "\"alicf\"", 1)).unwrap();
    sealtrail()
        .arg("query")
        .args(args(dir.path()))
        .assert()
        .code(1);
}

#[test]
fn query_with_key_stops_at_a_deleted_or_duplicated_record() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let seg = dir
        .path()
        .join("audit")
        .join(audit_logging::segment_name(1));
    let lines: Vec<String> = fs::read_to_string(&seg)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // Record 5 deleted: 1-4 are intact. Record 5 repeated: 1-5 are.
    let deleted = [&lines[..4], &lines[5..]].concat();
    let repeated = [&lines[..5], &lines[4..]].concat();
    for (damaged, intact_prefix) in [(deleted, 4), (repeated, 5)] {
        fs::write(&seg, damaged.join("\n") + "\n").unwrap();
        let out = sealtrail()
            .arg("query")
            .args(args(dir.path()))
            .arg("--json")
            .assert()
            .code(1);
        let printed = String::from_utf8_lossy(&out.get_output().stdout)
            .lines()
            .count();
        assert_eq!(
            printed, intact_prefix,
            "only records of the intact prefix are shown"
        );
    }
}

#[test]
fn query_refuses_filters_that_can_never_match() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    for bad in [
        &["--type", "nonsense"][..],
        &["--type", "vram"],
        &["--type", "VRAM.SEALED"],
        &["--since", "2026-11-03", "--until", "2026-11-02"],
    ] {
        let out = sealtrail()
            .arg("query")
            .args(args(dir.path()))
            .args(bad)
            .assert()
            .code(2);
        assert!(!out.get_output().stderr.is_empty(), "{bad:?}");
    }
}

#[test]
fn verify_json_reports_errors_as_json_too() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let mut a = args(dir.path());
    a[1] = dir.path().join("nope").display().to_string();
    let out = sealtrail()
        .arg("verify")
        .args(a)
        .arg("--json")
        .assert()
        .code(2);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["status"], "error");
    assert!(v["error"].as_str().unwrap().contains("nope"));
}

#[test]
fn json_reports_about_paths_that_are_not_utf8_do_not_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let odd = dir.path().join(OsStr::from_bytes(b"audit-\xff"));
    fs::rename(dir.path().join("audit"), &odd).unwrap();
    let segment = fs::read_dir(&odd)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = fs::read_to_string(&segment).unwrap();
    let cut: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    fs::write(&segment, cut.join("\n") + "\n").unwrap();
    // A verifier key to check a proof with, from a trail of its own.
    let other = tempfile::tempdir().unwrap();
    let keygen = sealtrail()
        .current_dir(other.path())
        .arg("keygen")
        .assert()
        .success();
    let vkey = String::from_utf8_lossy(&keygen.get_output().stdout)
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint verifier key: "))
        .unwrap()
        .to_owned();
    let tampered = sealtrail()
        .args(["verify", "--json", "--audit-dir"])
        .arg(&odd)
        .arg("--key")
        .arg(dir.path().join("k.key"))
        .assert()
        .code(1);
    // Not a proof: the directory itself.
    let not_a_proof = sealtrail()
        .args(["verify", "--json", "--checkpoint-key", &vkey, "--proof"])
        .arg(&odd)
        .assert()
        .code(2);
    for out in [tampered, not_a_proof] {
        let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?}", out.get_output()));
        assert!(report["status"].is_string(), "{report}");
    }
}

#[test]
fn query_names_the_key_it_picked_up_when_it_is_another_trails() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    // ./sealtrail.key of another trail, picked up without --key.
    let cwd = tempfile::tempdir().unwrap();
    sealtrail()
        .current_dir(cwd.path())
        .arg("keygen")
        .assert()
        .success();
    let out = sealtrail()
        .current_dir(cwd.path())
        .args(["query", "--audit-dir"])
        .arg(dir.path().join("audit"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("with the key sealtrail.key"), "{err}");
    assert!(err.contains("--key"), "{err}");
}

/// Runs `sealtrail` with a stdout whose reader is already gone, as under
/// `| head` once head has exited; returns the exit code and stderr.
fn run_into_closed_pipe(extra: &[&str], dir: &Path) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = common::binary()
        .args(extra)
        .args(args(dir))
        .stdout(writer)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_reader_that_stops_early_does_not_change_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let (code, err) = run_into_closed_pipe(&["verify"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");

    // A tampered trail still says so through its exit code.
    let segment = fs::read_dir(dir.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let text = fs::read_to_string(&segment).unwrap();
    fs::write(&segment, text.replacen("alice", "alicf", 1)).unwrap();
    let (code, err) = run_into_closed_pipe(&["verify", "--json"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn query_on_a_missing_directory_says_so_without_blaming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path());
    let out = sealtrail()
        .args(["query", "--audit-dir"])
        .arg(dir.path().join("no-such-audit"))
        .arg("--key")
        .arg(dir.path().join("k.key"))
        .assert()
        .code(2);
    assert!(
        out.get_output().stdout.is_empty(),
        "no table header before the error"
    );
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("no audit trail at"), "{err}");
    assert!(!err.contains("with the key"), "{err}");
}
