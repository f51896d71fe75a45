//! Checkpoints through the binary: `keygen` makes the checkpoint key and
//! prints its verifier key, `seal` signs checkpoints, `checkpoint export`
//! writes an anchor, and `verify --anchor` catches a trail cut back below it.

mod common;

use common::sealtrail;

use std::fs;
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// A two-tensor safetensors model, small enough to seal in a blink.
fn tiny_model(path: &Path) {
    let a = vec![1u8; 4 * 64];
    let b = vec![2u8; 4 * 32];
    let views = vec![
        ("a", TensorView::new(Dtype::F32, vec![64], &a).unwrap()),
        ("b", TensorView::new(Dtype::F32, vec![32], &b).unwrap()),
    ];
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// keygen, then one seal; returns the verifier key keygen printed.
fn sealed_trail(dir: &Path) -> String {
    let out = sealtrail(dir).arg("keygen").assert().success();
    let text = stdout(&out);
    let vkey = text
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint verifier key: "))
        .unwrap_or_else(|| panic!("no verifier key in {text}"))
        .to_owned();
    tiny_model(&dir.join("model.safetensors"));
    sealtrail(dir)
        .args(["seal", "model.safetensors"])
        .assert()
        .success();
    vkey
}

fn verify_json(dir: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = sealtrail(dir)
        .args(["verify", "--json"])
        .args(extra)
        .assert();
    let code = out.get_output().status.code().unwrap();
    (
        code,
        serde_json::from_slice(&out.get_output().stdout).unwrap(),
    )
}

#[test]
fn keygen_writes_an_owner_only_checkpoint_key_and_refuses_to_overwrite_either_key() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let path = dir.path().join("sealtrail-checkpoint.key");
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let signer = audit_logging::checkpoint::CheckpointSigner::load(&path).unwrap();
    assert_eq!(signer.verifier_key(), vkey);
    let before = fs::read(&path).unwrap();
    fs::remove_file(dir.path().join("sealtrail.key")).unwrap();
    sealtrail(dir.path()).arg("keygen").assert().code(2);
    assert_eq!(fs::read(&path).unwrap(), before);
    assert!(
        !dir.path().join("sealtrail.key").exists(),
        "keygen wrote one key of the pair"
    );
}

#[test]
fn cutting_the_trail_below_an_exported_anchor_makes_verify_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let out = sealtrail(dir.path())
        .args(["checkpoint", "export", "--out", "anchor.note"])
        .assert()
        .success();
    assert!(stdout(&out).contains("anchor.note"));
    // Export to stdout gives the same bytes.
    let printed = sealtrail(dir.path())
        .args(["checkpoint", "export"])
        .assert()
        .success();
    let anchor = fs::read(dir.path().join("anchor.note")).unwrap();
    assert_eq!(printed.get_output().stdout, anchor);

    let anchored = ["--checkpoint-key", &vkey, "--anchor", "anchor.note"];
    let (code, v) = verify_json(dir.path(), &anchored);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["report"]["checkpoints"]["anchor_checked"], true);
    assert_eq!(v["report"]["checkpoints"]["signatures_checked"], true);

    // Cut the last two records, and the checkpoints that would show it.
    let audit = dir.path().join("sealtrail-audit");
    let segment = audit.join(audit_logging::segment_name(1));
    let data = fs::read(&segment).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    fs::write(&segment, lines[..lines.len() - 2].concat()).unwrap();
    fs::remove_dir_all(audit.join("checkpoints")).unwrap();

    // Without the anchor the shorter trail is a valid trail.
    let (code, v) = verify_json(dir.path(), &["--checkpoint-key", &vkey]);
    assert_eq!(code, 0, "{v}");

    let (code, v) = verify_json(dir.path(), &anchored);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["status"], "tampered");
    assert_eq!(v["report"]["finding"]["kind"], "truncated_below_anchor");
}

#[test]
fn an_anchor_needs_a_checkpoint_key_and_a_wrong_one_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    sealtrail(dir.path())
        .args(["checkpoint", "export", "--out", "anchor.note"])
        .assert()
        .success();
    sealtrail(dir.path())
        .args(["verify", "--anchor", "anchor.note"])
        .assert()
        .code(2);
    let other = tempfile::tempdir().unwrap();
    let out = sealtrail(other.path()).arg("keygen").assert().success();
    let wrong = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint verifier key: "))
        .unwrap()
        .to_owned();
    let out = sealtrail(dir.path())
        .args([
            "verify",
            "--checkpoint-key",
            &wrong,
            "--anchor",
            "anchor.note",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("anchor"), "{err}");
}

#[test]
fn export_without_checkpoints_says_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    fs::remove_dir_all(dir.path().join("sealtrail-audit/checkpoints")).unwrap();
    let out = sealtrail(dir.path())
        .args(["checkpoint", "export"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("sealtrail keygen"), "{err}");
}

#[test]
fn proofs_check_out_offline_with_only_the_verifier_key_and_an_altered_proof_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    sealtrail(dir.path())
        .args(["seal", "model.safetensors"])
        .assert()
        .success();
    let sizes: Vec<u64> =
        audit_logging::logtree::list_checkpoints(&dir.path().join("sealtrail-audit"))
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    sealtrail(dir.path())
        .args(["prove", "inclusion", "3", "--out", "inclusion.json"])
        .assert()
        .success();
    let out = sealtrail(dir.path())
        .args([
            "prove",
            "consistency",
            &sizes[0].to_string(),
            &sizes[1].to_string(),
        ])
        .assert()
        .success();
    fs::write(
        dir.path().join("consistency.json"),
        &out.get_output().stdout,
    )
    .unwrap();

    // The checker has the proofs and the verifier key, nothing else.
    let elsewhere = tempfile::tempdir().unwrap();
    for name in ["inclusion.json", "consistency.json"] {
        let proof = elsewhere.path().join(name);
        fs::copy(dir.path().join(name), &proof).unwrap();
        let out = sealtrail(elsewhere.path())
            .args(["verify", "--json", "--checkpoint-key", &vkey, "--proof"])
            .arg(&proof)
            .assert()
            .success();
        let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(v["status"], "valid", "{v}");

        // One hash of the proof altered.
        let mut p: serde_json::Value = serde_json::from_slice(&fs::read(&proof).unwrap()).unwrap();
        let first = p["proof"][0].as_str().unwrap().to_owned();
        let flipped = if first.starts_with('0') { "1" } else { "0" }.to_owned() + &first[1..];
        p["proof"][0] = flipped.into();
        fs::write(&proof, serde_json::to_vec(&p).unwrap()).unwrap();
        sealtrail(elsewhere.path())
            .args(["verify", "--checkpoint-key", &vkey, "--proof"])
            .arg(&proof)
            .assert()
            .code(1);
    }
}

#[test]
fn export_skips_a_checkpoint_planted_under_a_larger_name() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let cps = dir.path().join("sealtrail-audit").join("checkpoints");
    let (newest, _) =
        audit_logging::logtree::latest_checkpoint(&dir.path().join("sealtrail-audit"))
            .unwrap()
            .unwrap();
    let real = fs::read(cps.join(format!("{newest:020}.note"))).unwrap();
    fs::write(cps.join(format!("{:020}.note", 999)), &real).unwrap();
    fs::write(cps.join(format!("{:020}.note", 1000)), b"junk").unwrap();

    let out = sealtrail(dir.path())
        .args(["checkpoint", "export", "--checkpoint-key", &vkey])
        .assert()
        .success();
    assert_eq!(
        out.get_output().stdout,
        real,
        "the real checkpoint is exported"
    );
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("skipping") && err.contains("999"), "{err}");
}

#[test]
fn export_with_another_trails_key_finds_nothing_valid() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    let other = tempfile::tempdir().unwrap();
    let other_vkey = sealed_trail(other.path());
    sealtrail(dir.path())
        .args(["checkpoint", "export", "--checkpoint-key", &other_vkey])
        .assert()
        .code(2);
}

#[test]
fn export_without_a_key_skips_a_checkpoint_of_another_trail() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    let other = tempfile::tempdir().unwrap();
    sealed_trail(other.path());
    let audit = |d: &Path| d.join("sealtrail-audit");
    let (_, own) = audit_logging::logtree::latest_checkpoint(&audit(dir.path()))
        .unwrap()
        .unwrap();
    let (_, foreign) = audit_logging::logtree::latest_checkpoint(&audit(other.path()))
        .unwrap()
        .unwrap();
    // The other trail's checkpoint, planted under a larger name.
    let planted = audit(dir.path())
        .join("checkpoints")
        .join(format!("{:020}.note", 500));
    let foreign_note = fs::read(&foreign).unwrap();
    let text = String::from_utf8(foreign_note.clone()).unwrap();
    let size_line = text.lines().nth(1).unwrap().to_owned();
    fs::write(&planted, text.replacen(&size_line, "500", 1)).unwrap();
    let out = sealtrail(dir.path())
        .args(["checkpoint", "export"])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, fs::read(own).unwrap());
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("another trail"), "{err}");
}

#[test]
fn seal_refuses_another_trails_checkpoint_key() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    let other = tempfile::tempdir().unwrap();
    sealed_trail(other.path());
    let foreign = other.path().join("sealtrail-checkpoint.key");
    let out = sealtrail(dir.path())
        .args(["seal", "model.safetensors", "--checkpoint-key-file"])
        .arg(&foreign)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("another trail"), "{err}");
}

#[test]
fn a_fifo_given_as_a_proof_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let fifo = dir.path().join("proof.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = sealtrail(dir.path())
        .args(["verify", "--checkpoint-key", &vkey, "--proof"])
        .arg(&fifo)
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn deleting_every_segment_of_a_checkpointed_trail_makes_verify_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    sealtrail(dir.path())
        .args(["checkpoint", "export", "--out", "anchor.note"])
        .assert()
        .success();
    let audit = dir.path().join("sealtrail-audit");
    for entry in fs::read_dir(&audit).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            fs::remove_file(path).unwrap();
        }
    }
    let (code, v) = verify_json(dir.path(), &["--checkpoint-key", &vkey]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["report"]["finding"]["kind"], "truncated_below_checkpoint");

    fs::remove_dir_all(audit.join("checkpoints")).unwrap();
    let anchored = ["--checkpoint-key", &vkey, "--anchor", "anchor.note"];
    let (code, v) = verify_json(dir.path(), &anchored);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["report"]["finding"]["kind"], "truncated_below_anchor");

    // Neither segments nor checkpoints nor an anchor: not a trail at all.
    let (code, v) = verify_json(dir.path(), &["--checkpoint-key", &vkey]);
    assert_eq!(code, 2, "{v}");
}

#[test]
fn a_checkpoint_key_of_another_trail_is_a_usage_error_not_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let other = tempfile::tempdir().unwrap();
    let wrong = sealed_trail(other.path());
    let out = sealtrail(dir.path())
        .args(["verify", "--checkpoint-key", &wrong])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let name = wrong.split('+').next().unwrap();
    let origin = vkey.split('+').next().unwrap();
    assert!(err.contains("another trail"), "{err}");
    assert!(err.contains(name) && err.contains(origin), "{err}");

    // A key of the right name that did not sign a checkpoint: tampering.
    let audit = dir.path().join("sealtrail-audit");
    let (_, path) = audit_logging::logtree::latest_checkpoint(&audit)
        .unwrap()
        .unwrap();
    let forger = audit_logging::checkpoint::CheckpointSigner::generate(
        audit_logging::checkpoint::KeyName::new(origin).unwrap(),
    )
    .unwrap();
    let note = fs::read(&path).unwrap();
    let genuine = audit_logging::checkpoint::Note::parse(&note).unwrap();
    let checkpoint = audit_logging::checkpoint::Checkpoint::parse(genuine.text()).unwrap();
    fs::write(&path, forger.sign_checkpoint(&checkpoint).unwrap()).unwrap();
    let (code, v) = verify_json(dir.path(), &["--checkpoint-key", &vkey]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["report"]["finding"]["kind"], "checkpoint_bad_signature");
}

#[test]
fn prove_on_a_tampered_trail_exits_1_and_sizes_out_of_order_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    sealtrail(dir.path())
        .args(["seal", "model.safetensors"])
        .assert()
        .success();
    let audit = dir.path().join("sealtrail-audit");
    let sizes: Vec<String> = audit_logging::logtree::list_checkpoints(&audit)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s.to_string())
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");

    let out = sealtrail(dir.path())
        .args(["prove", "consistency", &sizes[1], &sizes[0]])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("larger than the new size"), "{err}");
    assert!(!err.contains("sealtrail verify"), "{err}");

    // The last record cut off, the checkpoints left in place.
    let segment = audit.join(audit_logging::segment_name(1));
    let data = fs::read(&segment).unwrap();
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    fs::write(&segment, lines[..lines.len() - 1].concat()).unwrap();
    sealtrail(dir.path())
        .args(["prove", "inclusion", "1"])
        .assert()
        .code(1);
    sealtrail(dir.path())
        .args(["prove", "consistency", &sizes[0], &sizes[1]])
        .assert()
        .code(1);
}

#[test]
fn verify_without_stored_checkpoints_does_not_claim_it_checked_any() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    fs::remove_dir_all(dir.path().join("sealtrail-audit/checkpoints")).unwrap();
    for extra in [&[][..], &["--checkpoint-key", &vkey][..]] {
        let out = sealtrail(dir.path())
            .arg("verify")
            .args(extra)
            .assert()
            .success();
        let text = stdout(&out);
        let line = text
            .lines()
            .find(|l| l.contains("checkpoints stored"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("stored 0"), "{line}");
        assert!(!line.contains("checked"), "{line}");
    }
}

#[test]
fn a_checkpoints_directory_swapped_for_a_link_is_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let audit = dir.path().join("sealtrail-audit");
    // A directory of the attacker's choosing, here empty, so following the
    // link would show a trail with no checkpoints at all.
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::rename(audit.join("checkpoints"), dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, audit.join("checkpoints")).unwrap();
    let (code, v) = verify_json(dir.path(), &["--checkpoint-key", &vkey]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["status"], "error");
    assert!(
        v["error"].as_str().unwrap().contains("symbolic link"),
        "{v}"
    );
}

#[test]
fn a_file_that_is_not_a_proof_still_gets_json_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    fs::write(dir.path().join("garbage.json"), "{").unwrap();
    for proof in ["garbage.json", "no-such-proof.json"] {
        let (code, report) =
            verify_json(dir.path(), &["--checkpoint-key", &vkey, "--proof", proof]);
        assert_eq!(code, 2, "{report}");
        assert_eq!(report["status"], "error", "{report}");
        assert!(
            report["error"].as_str().unwrap().contains(proof),
            "{report}"
        );
    }
}

#[test]
fn out_files_that_are_symbolic_links_are_refused_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("out.link")).unwrap();
    let commands: [&[&str]; 2] = [
        &["checkpoint", "export", "--out", "out.link"],
        &["prove", "inclusion", "1", "--out", "out.link"],
    ];
    for args in commands {
        let out = sealtrail(dir.path()).args(args).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("symbolic link"), "{args:?}: {err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me", "{args:?}");
    }
    // A regular file there is still replaced, as before.
    fs::write(
        dir.path().join("anchor.note"),
        "an older, longer anchor file\n".repeat(20),
    )
    .unwrap();
    sealtrail(dir.path())
        .args(["checkpoint", "export", "--out", "anchor.note"])
        .assert()
        .success();
    let note = fs::read_to_string(dir.path().join("anchor.note")).unwrap();
    assert!(
        note.starts_with("sealtrail/") && !note.contains("older"),
        "{note}"
    );
}

#[test]
fn keygen_writes_every_key_or_none() {
    let dir = tempfile::tempdir().unwrap();
    // One file named for two keys, however it is spelled.
    sealtrail(dir.path())
        .args([
            "keygen",
            "--out",
            "k.key",
            "--checkpoint-key-out",
            "./k.key",
        ])
        .assert()
        .code(2);
    sealtrail(dir.path())
        .args(["keygen", "--out", "a.key", "--seal-key-out", "a.key"])
        .assert()
        .code(2);
    // A checkpoint or seal key that cannot be written takes the others back.
    sealtrail(dir.path())
        .args([
            "keygen",
            "--out",
            "b.key",
            "--checkpoint-key-out",
            "missing/c.key",
        ])
        .assert()
        .code(2);
    sealtrail(dir.path())
        .args([
            "keygen",
            "--out",
            "d.key",
            "--seal-key-out",
            "missing/s.key",
        ])
        .assert()
        .code(2);
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "keygen left {left:?}");
    // And then the same names work.
    sealtrail(dir.path())
        .args(["keygen", "--out", "k.key"])
        .assert()
        .success();
}

#[test]
fn a_checkpoint_key_file_named_but_missing_is_an_error_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    sealed_trail(dir.path());
    let before = fs::read_dir(dir.path().join("sealtrail-audit/checkpoints"))
        .unwrap()
        .count();
    for (flag, value) in [
        ("--checkpoint-key-file", "typo-checkpoint.key"),
        ("", "typo-checkpoint.key"),
    ] {
        let mut cmd = sealtrail(dir.path());
        cmd.args(["seal", "model.safetensors"]);
        if flag.is_empty() {
            cmd.env("SEALTRAIL_CHECKPOINT_KEY", value);
        } else {
            cmd.args([flag, value]);
        }
        let out = cmd.assert().code(2);
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(
            err.contains("no checkpoint key at typo-checkpoint.key"),
            "{err}"
        );
        assert!(err.contains("sealtrail keygen"), "{err}");
    }
    let after = fs::read_dir(dir.path().join("sealtrail-audit/checkpoints"))
        .unwrap()
        .count();
    assert_eq!(before, after);
    // The default file, when absent, still just means no checkpoints.
    fs::remove_file(dir.path().join("sealtrail-checkpoint.key")).unwrap();
    let out = sealtrail(dir.path())
        .args(["seal", "model.safetensors"])
        .assert()
        .success();
    assert!(stdout(&out).contains("no checkpoints signed"));
}

#[test]
fn the_verifier_key_can_be_printed_again_and_common_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = sealed_trail(dir.path());
    let out = sealtrail(dir.path())
        .args(["checkpoint", "verifier-key"])
        .assert()
        .success();
    assert_eq!(stdout(&out).trim(), vkey);

    // The signing key file's name, or its contents, where the verifier key
    // string goes: each is named as such, and the secret is not echoed.
    let signing = fs::read_to_string(dir.path().join("sealtrail-checkpoint.key")).unwrap();
    for (given, says) in [
        ("sealtrail-checkpoint.key", "that names a file"),
        (signing.as_str(), "that is the secret signing key"),
    ] {
        let out = sealtrail(dir.path())
            .args(["verify", "--checkpoint-key", given])
            .assert()
            .code(2);
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(err.contains(says), "{err}");
        assert!(err.contains("checkpoint verifier-key"), "{err}");
        let secret = signing.lines().nth(1).unwrap();
        assert!(!err.contains(secret), "the signing key was echoed: {err}");
    }
}
