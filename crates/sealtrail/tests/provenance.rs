//! `seal` with a manifest, an OpenSSF model signature, a GGUF model and a
//! seal key file, end to end through the binary. The signed model is the
//! fixture that the real `model_signing` tool made
//! (`scripts/make-model-signing-fixtures.sh`).

mod common;

use common::sealtrail;

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vram-residency/tests/data")
}

/// A scratch directory with keys and a copy of the signed model in `model/`.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for name in ["model.safetensors", "config.json"] {
        std::fs::copy(
            data().join("model-signing/model").join(name),
            model.join(name),
        )
        .unwrap();
    }
    (dir, model)
}

fn json(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn count(dir: &Path, event_type: &str) -> usize {
    let out = sealtrail(dir)
        .args(["query", "--json", "--type", event_type])
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .count()
}

fn seal_signed(dir: &Path, model: &Path) -> assert_cmd::assert::Assert {
    sealtrail(dir)
        .arg("seal")
        .arg(model.join("model.safetensors"))
        .arg("--signature")
        .arg(data().join("model-signing/model.sig"))
        .arg("--signer-key")
        .arg(data().join("model-signing/signer.pub.pem"))
        .arg("--json")
        .assert()
}

#[test]
fn a_signed_model_seals_and_says_so() {
    let (dir, model) = setup();
    let out = seal_signed(dir.path(), &model).success();
    let v = json(&out);
    assert!(
        v["provenance"]
            .as_str()
            .unwrap()
            .contains("model signature"),
        "{v}"
    );
    assert_eq!(count(dir.path(), "model.sealed"), 1);
    assert_eq!(count(dir.path(), "model.rejected"), 0);
    sealtrail(dir.path()).arg("verify").assert().success();
}

#[test]
fn a_tampered_signed_model_is_refused_recorded_and_exits_1() {
    let (dir, model) = setup();
    std::fs::write(model.join("config.json"), "{}\n").unwrap();
    let out = seal_signed(dir.path(), &model).code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("config.json") && stderr.contains("does not match"),
        "{stderr}"
    );
    assert_eq!(count(dir.path(), "model.rejected"), 1);
    assert_eq!(
        count(dir.path(), "vram."),
        0,
        "a refused model reached device memory"
    );
    sealtrail(dir.path()).arg("verify").assert().success();
}

#[test]
fn a_signer_key_that_is_not_a_key_is_a_usage_error_before_the_trail() {
    let (dir, model) = setup();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    sealtrail(dir.path())
        .arg("seal")
        .arg(model.join("model.safetensors"))
        .arg("--signature")
        .arg(data().join("model-signing/model.sig"))
        .arg("--signer-key")
        .arg(&bad)
        .assert()
        .code(2);
    assert!(!dir.path().join("sealtrail-audit").exists());
    // --signature without --signer-key is refused by the parser.
    sealtrail(dir.path())
        .arg("seal")
        .arg(model.join("model.safetensors"))
        .arg("--signature")
        .arg(data().join("model-signing/model.sig"))
        .assert()
        .code(2);
}

#[test]
fn a_manifest_is_checked_in_either_spelling() {
    let (dir, model) = setup();
    let path = model.join("model.safetensors");
    let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
    let sums = dir.path().join("SHA256SUMS");
    std::fs::write(&sums, format!("{digest}  model.safetensors\n")).unwrap();
    sealtrail(dir.path())
        .arg("seal")
        .arg(&path)
        .arg("--manifest")
        .arg(&sums)
        .assert()
        .success();

    let wrong = dir.path().join("manifest.json");
    std::fs::write(
        &wrong,
        format!(r#"{{"model.safetensors": "{}"}}"#, "00".repeat(32)),
    )
    .unwrap();
    sealtrail(dir.path())
        .arg("seal")
        .arg(&path)
        .arg("--manifest")
        .arg(&wrong)
        .assert()
        .code(1);
    let unlisted = dir.path().join("other.json");
    std::fs::write(&unlisted, format!(r#"{{"config.json": "{digest}"}}"#)).unwrap();
    let out = sealtrail(dir.path())
        .arg("seal")
        .arg(&path)
        .arg("--manifest")
        .arg(&unlisted)
        .assert()
        .code(1);
    assert!(
        String::from_utf8_lossy(&out.get_output().stderr).contains("not listed"),
        "{out:?}"
    );
    assert_eq!(count(dir.path(), "model.sealed"), 1);
    assert_eq!(count(dir.path(), "model.rejected"), 2);

    // A manifest that is not one is a usage error.
    std::fs::write(&wrong, "garbage").unwrap();
    sealtrail(dir.path())
        .arg("seal")
        .arg(&path)
        .arg("--manifest")
        .arg(&wrong)
        .assert()
        .code(2);
}

#[test]
fn a_gguf_model_seals() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let out = sealtrail(dir.path())
        .arg("seal")
        .arg(data().join("gguf/tiny.gguf"))
        .args(["--max-shard-bytes", "96B", "--json"])
        .assert()
        .success();
    let v = json(&out);
    assert_eq!(v["file_bytes"], 768);
    assert_eq!(v["shards"].as_array().unwrap().len(), 2);
    assert_eq!(v["all_verified"], true);
}

#[test]
fn a_seal_key_file_gives_every_seal_its_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = sealtrail(dir.path())
        .args(["keygen", "--seal-key-out", "seal.key"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let key_text = std::fs::read_to_string(dir.path().join("seal.key")).unwrap();
    let secret = key_text.lines().nth(1).unwrap();
    assert!(!text.contains(secret), "keygen printed the seal key");

    let mut ids = Vec::new();
    for _ in 0..2 {
        let out = sealtrail(dir.path())
            .arg("seal")
            .arg(data().join("gguf/tiny.gguf"))
            .args(["--seal-key-file", "seal.key", "--json"])
            .assert()
            .success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(!stdout.contains(secret), "seal printed the seal key");
        ids.push(json(&out)["seal_key_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1], "the same key file gives the same key id");
    assert!(
        text.contains(&ids[0]),
        "keygen names the key by its id: {text}"
    );
    let out = sealtrail(dir.path())
        .args(["query", "--json", "--type", "vram.sealed"])
        .assert()
        .success();
    let trail = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(trail.lines().all(|l| l.contains(&ids[0])), "{trail}");
    assert!(!trail.contains(secret));

    // A key file others can read is refused.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        dir.path().join("seal.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    sealtrail(dir.path())
        .arg("seal")
        .arg(data().join("gguf/tiny.gguf"))
        .args(["--seal-key-file", "seal.key"])
        .assert()
        .code(2);
}

/// A sharded checkpoint in `dir/ckpt`: tensors `a`, `b` in the first file,
/// `c` in the second, and the index mapping them.
fn checkpoint(dir: &Path, second: &str) -> PathBuf {
    use safetensors::tensor::TensorView;
    let ckpt = dir.join("ckpt");
    std::fs::create_dir(&ckpt).unwrap();
    let file = |tensors: &[(&str, &[u8])]| {
        let views: Vec<_> = tensors
            .iter()
            .map(|(n, d)| {
                let view = TensorView::new(safetensors::Dtype::U8, vec![d.len()], d).unwrap();
                (*n, view)
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    };
    std::fs::write(
        ckpt.join("model-00001-of-00002.safetensors"),
        file(&[("a", &[1; 8]), ("b", &[2; 8])]),
    )
    .unwrap();
    std::fs::write(
        ckpt.join("model-00002-of-00002.safetensors"),
        file(&[("c", &[3; 8])]),
    )
    .unwrap();
    let index = serde_json::json!({"weight_map": {
        "a": "model-00001-of-00002.safetensors",
        "b": "model-00001-of-00002.safetensors",
        "c": second,
    }});
    std::fs::write(ckpt.join("model.safetensors.index.json"), index.to_string()).unwrap();
    ckpt
}

#[test]
fn a_sharded_checkpoint_seals_from_its_directory_or_its_index() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let ckpt = checkpoint(dir.path(), "model-00002-of-00002.safetensors");
    for target in [ckpt.clone(), ckpt.join("model.safetensors.index.json")] {
        let out = sealtrail(dir.path())
            .arg("seal")
            .arg(&target)
            .arg("--json")
            .assert()
            .success();
        let v = json(&out);
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), 2, "{v}");
        assert_eq!(files[0]["name"], "model-00001-of-00002.safetensors");
        assert_eq!(v["index_sha256"].as_str().unwrap().len(), 64);
        assert_eq!(v["shards"].as_array().unwrap().len(), 2);
    }
    assert_eq!(count(dir.path(), "model.sealed"), 4);
}

#[test]
fn the_shard_table_of_a_checkpoint_names_each_shards_file() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let ckpt = checkpoint(dir.path(), "model-00002-of-00002.safetensors");
    let out = sealtrail(dir.path())
        .arg("seal")
        .arg(&ckpt)
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // Both files' shards are numbered from 0: each row must say whose it is.
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("verified")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].ends_with("model-00001-of-00002.safetensors"),
        "{text}"
    );
    assert!(
        rows[1].ends_with("model-00002-of-00002.safetensors"),
        "{text}"
    );
    assert!(text.contains("RESULT    FILE"), "{text}");
}

#[test]
fn a_checkpoint_index_reaching_outside_its_directory_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let ckpt = checkpoint(dir.path(), "../model-00002-of-00002.safetensors");
    let out = sealtrail(dir.path())
        .arg("seal")
        .arg(&ckpt)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("unsafe path"), "{stderr}");
    assert_eq!(count(dir.path(), "security.path_traversal_attempt"), 1);
    assert_eq!(count(dir.path(), "model.rejected"), 1);
    assert_eq!(count(dir.path(), "vram."), 0);
}

#[test]
fn a_checkpoint_file_that_differs_from_its_manifest_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let ckpt = checkpoint(dir.path(), "model-00002-of-00002.safetensors");
    let mut sums = String::new();
    for name in [
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        let digest = hex::encode(Sha256::digest(std::fs::read(ckpt.join(name)).unwrap()));
        sums.push_str(&format!("{digest}  {name}\n"));
    }
    std::fs::write(dir.path().join("SHA256SUMS"), &sums).unwrap();
    sealtrail(dir.path())
        .arg("seal")
        .arg(&ckpt)
        .args(["--manifest", "SHA256SUMS"])
        .assert()
        .success();
    let second = ckpt.join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&second).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&second, bytes).unwrap();
    let out = sealtrail(dir.path())
        .arg("seal")
        .arg(&ckpt)
        .args(["--manifest", "SHA256SUMS"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("model-00002-of-00002.safetensors"),
        "{stderr}"
    );
    assert_eq!(count(dir.path(), "model.rejected"), 1);
}
