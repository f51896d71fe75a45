//! `seal` and `demo` end to end, through the binary.

mod common;

use common::sealtrail;

use std::path::{Path, PathBuf};

/// Whether the dynamic loader can open the CUDA driver library.
fn cuda_driver_loadable() -> bool {
    ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).unwrap();
        // SAFETY: dlopen with a valid C string; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            !handle.is_null() && libc::dlclose(handle) == 0
        }
    })
}

/// The real all-MiniLM-L6-v2 model: `$SEALTRAIL_TEST_MODEL`, or the copy in
/// `shared/` beside the repository; required when `SEALTRAIL_REQUIRE_MODEL=1`.
fn real_model() -> Option<PathBuf> {
    let path = std::env::var_os("SEALTRAIL_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/models/all-minilm-l6-v2/model.safetensors")
        });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("SEALTRAIL_REQUIRE_MODEL").as_deref() != Ok("1"),
        "SEALTRAIL_REQUIRE_MODEL=1 but the model is missing at {}",
        path.display()
    );
    eprintln!("skipping: the real model is not at {}", path.display());
    None
}

const PUBLISHED_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

fn json(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn sealing_the_real_model_prints_its_published_digest_and_the_trail_verifies() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();

    let out = sealtrail(dir.path())
        .args(["seal", "--max-shard-bytes", "16MiB", "--json"])
        .arg(&model)
        .assert()
        .success();
    let v = json(&out);
    assert_eq!(v["file_sha256"], PUBLISHED_SHA256);
    assert_eq!(
        v["simulated"], true,
        "the host backend must say it is a simulation"
    );
    let shards = v["shards"].as_array().unwrap();
    assert!(shards.len() > 1);
    assert!(shards.iter().all(|s| s["verified"] == true));

    let out = sealtrail(dir.path())
        .args(["verify", "--json"])
        .assert()
        .success();
    let report = json(&out);
    assert_eq!(report["status"], "intact");
    let by_type = &report["report"]["by_type"];
    assert_eq!(by_type["vram.sealed"], shards.len());
    assert_eq!(by_type["vram.seal_verified"], shards.len());
    assert_eq!(by_type["vram.deallocated"], shards.len());
}

#[test]
fn human_output_shows_the_digest_and_the_simulation() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let out = sealtrail(dir.path())
        .arg("seal")
        .arg(&model)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains(&format!("file sha256: {PUBLISHED_SHA256}")),
        "{text}"
    );
    assert!(text.contains("SIMULATED"), "{text}");
}

#[test]
fn a_wrong_expected_digest_refuses_the_model_before_upload_and_records_it() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    sealtrail(dir.path())
        .args(["seal", "--expected-sha256", &"00".repeat(32)])
        .arg(&model)
        .assert()
        .code(1);
    let out = sealtrail(dir.path())
        .args(["query", "--json", "--type", "model.rejected"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout)
            .lines()
            .count(),
        1
    );
    // Refused before upload: nothing of the wrong model was ever resident.
    let out = sealtrail(dir.path())
        .args(["query", "--json", "--type", "vram."])
        .assert()
        .success();
    assert!(
        out.get_output().stdout.is_empty(),
        "a rejected model reached device memory"
    );
    sealtrail(dir.path()).arg("verify").assert().success();
}

#[test]
fn sealing_a_file_that_is_not_safetensors_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    std::fs::write(dir.path().join("notes.txt"), "not a model at all").unwrap();
    let out = sealtrail(dir.path())
        .args(["seal", "notes.txt"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("notes.txt"), "{err}");
    sealtrail(dir.path())
        .args(["seal", "missing.safetensors"])
        .assert()
        .code(2);
}

#[test]
fn sealing_without_a_key_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.safetensors"), b"any bytes").unwrap();
    let out = sealtrail(dir.path())
        .args(["seal", "x.safetensors"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("sealtrail keygen"), "{err}");
}

#[test]
fn demo_catches_the_injected_corruption_and_its_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let out = sealtrail(dir.path())
        .args(["demo", "--json", "--keep"])
        .arg(&keep)
        .assert()
        .success();
    let v = json(&out);
    assert_eq!(v["as_expected"], true);
    assert_eq!(v["corruption_caught"], true);
    assert_eq!(v["audit"]["by_type"]["vram.seal_verification_failed"], 1);

    // The kept trail verifies on its own, with the kept key.
    sealtrail(&keep)
        .args(["verify", "--audit-dir", "audit", "--key", "audit.key"])
        .assert()
        .success();
    // And a non-empty --keep directory is refused rather than mixed into,
    // as is a file given in its place.
    sealtrail(dir.path())
        .args(["demo", "--keep"])
        .arg(&keep)
        .assert()
        .code(2);
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = sealtrail(dir.path())
        .args(["demo", "--keep"])
        .arg(&file)
        .assert()
        .code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("is not a directory"), "{err}");
}

#[test]
fn demo_names_its_backend_and_the_host_one_is_simulated() {
    let dir = tempfile::tempdir().unwrap();
    let out = sealtrail(dir.path())
        .args(["demo", "--json", "--backend", "host"])
        .assert()
        .success();
    let v = json(&out);
    assert_eq!(v["backend"], "host-simulation");
    assert_eq!(v["simulated"], true);
    assert!(v["device"].as_str().unwrap().contains("SIMULATED"), "{v}");
}

#[test]
fn the_cuda_backend_without_a_driver_is_a_clear_error_before_the_trail_is_touched() {
    if cuda_driver_loadable() {
        eprintln!("skipping: a CUDA driver is present");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    std::fs::write(&model, b"not read").unwrap();
    for args in [
        vec!["demo", "--backend", "cuda"],
        vec![
            "seal",
            "--backend",
            "cuda",
            "--device",
            "1",
            "model.safetensors",
        ],
    ] {
        let out = sealtrail(dir.path()).args(&args).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("no CUDA driver"), "{args:?}: {err}");
        assert!(err.contains("--backend cuda"), "{args:?}: {err}");
    }
    assert!(
        !dir.path().join("sealtrail-audit").exists(),
        "seal opened the trail before finding it had no device"
    );
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["keygen", "demo", "seal", "verify", "query"] {
        let out = sealtrail(dir.path())
            .args([cmd, "--help"])
            .assert()
            .success();
        assert!(
            !out.get_output().stdout.is_empty(),
            "{cmd} --help printed nothing"
        );
    }
    let out = sealtrail(dir.path()).arg("--help").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("Exit codes"), "{text}");
    sealtrail(dir.path()).arg("frobnicate").assert().code(2);
}

#[test]
fn a_successful_seal_records_the_model_by_its_file_digest_and_full_path() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    sealtrail(dir.path())
        .arg("seal")
        .arg(&model)
        .assert()
        .success();
    let out = sealtrail(dir.path())
        .args(["query", "--json", "--type", "model.sealed"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["event"]["file_sha256"], PUBLISHED_SHA256);
    let canonical = std::fs::canonicalize(&model).unwrap();
    assert_eq!(v["event"]["model_ref"], canonical.display().to_string());
}

#[test]
fn a_missing_model_leaves_the_trail_untouched() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    sealtrail(dir.path())
        .args(["seal", "missing.safetensors"])
        .assert()
        .code(2);
    assert!(!dir.path().join("sealtrail-audit").exists());
}

#[test]
fn hostile_file_names_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let name = "evil\u{1b}[2J\u{202e}gnp.safetensors";
    let out = sealtrail(dir.path()).args(["seal", name]).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{202e}'),
        "{err:?}"
    );
    assert!(err.contains("\\u{1b}"), "{err}");
}

#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = common::binary()
        .current_dir(dir.path())
        .args(["keygen", "--out", "k.key"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("standard output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn zero_byte_or_nonsense_shard_sizes_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path())
        .args(["seal", "--max-shard-bytes", "0", "m"])
        .assert()
        .code(2);
    sealtrail(dir.path())
        .args(["seal", "--max-shard-bytes", "lots", "m"])
        .assert()
        .code(2);
    let out = sealtrail(dir.path())
        .args([
            "seal",
            "--max-shard-bytes",
            "99999999999999999999999TB",
            "m",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("more bytes than a shard can have"), "{err}");
}

#[test]
fn a_full_stderr_keeps_the_exit_code_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = common::binary()
        .current_dir(dir.path())
        .args(["seal", "no-such-model.safetensors"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn seal_json_prints_json_when_the_model_is_refused_or_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    std::fs::write(
        dir.path().join("junk.safetensors"),
        b"\x05\0\0\0\0\0\0\0{}{}{",
    )
    .unwrap();
    let wrong = "00".repeat(32);
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["junk.safetensors", "--expected-sha256", &wrong],
            1,
            "rejected",
        ),
        (&["junk.safetensors"], 2, "error"),
        (&["no-such-model.safetensors"], 2, "error"),
    ];
    for (args, code, status) in cases {
        let out = sealtrail(dir.path())
            .args(["seal", "--json"])
            .args(args)
            .assert()
            .code(code);
        let report = json(&out);
        assert_eq!(report["status"], status, "{report}");
        assert!(
            report["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{report}"
        );
    }
}

#[test]
fn seal_json_names_a_model_whose_file_name_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    let name = std::ffi::OsStr::from_bytes(b"model-\xff.safetensors");
    let views = vec![(
        "w",
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &[0u8; 16]).unwrap(),
    )];
    safetensors::serialize_to_file(views, None, &dir.path().join(name)).unwrap();
    let out = sealtrail(dir.path())
        .args(["seal", "--json"])
        .arg(name)
        .assert()
        .success();
    let report = json(&out);
    assert!(
        report["model"].as_str().unwrap().contains("model-"),
        "{report}"
    );
}

/// A safetensors file of `count` `U8` tensors of `bytes` zero bytes each,
/// written sparse so that it costs no disk.
fn big_model(path: &Path, count: u64, bytes: u64) {
    use std::io::Write as _;
    let tensors: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#""t{i:04}":{{"dtype":"U8","shape":[{bytes}],"data_offsets":[{},{}]}}"#,
                i * bytes,
                (i + 1) * bytes
            )
        })
        .collect();
    let header = format!("{{{}}}", tensors.join(","));
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&(header.len() as u64).to_le_bytes())
        .unwrap();
    file.write_all(header.as_bytes()).unwrap();
    file.set_len(8 + header.len() as u64 + count * bytes)
        .unwrap();
}

#[test]
fn ctrl_c_during_a_seal_releases_the_shards_closes_the_trail_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    // 64 shards of 16 MiB: more than a test machine seals before the
    // interrupt arrives, each allocated in a moment.
    big_model(&dir.path().join("big.safetensors"), 64, 16 << 20);
    let mut child = common::binary()
        .current_dir(dir.path())
        .args(["seal", "big.safetensors", "--max-shard-bytes", "16MiB"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the upload has begun (the first allocation is on record),
    // then interrupt it as Ctrl-C would.
    let segment = dir
        .path()
        .join("sealtrail-audit")
        .join(audit_logging::segment_name(1));
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&segment)
        .unwrap_or_default()
        .contains("vram.allocated")
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the seal never started uploading"
        );
        assert!(child.try_wait().unwrap().is_none(), "the seal ended early");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: kill(2) on the child's pid, which has not been waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");

    // Everything allocated was released, nothing was sealed or rejected,
    // and the trail closed cleanly.
    let out = sealtrail(dir.path())
        .args(["verify", "--json"])
        .assert()
        .success();
    let report = &json(&out)["report"];
    assert_eq!(report["logger_starts"], report["logger_stops"], "{report}");
    let count = |ty: &str| {
        let out = sealtrail(dir.path())
            .args(["query", "--json", "--type", ty])
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone())
            .unwrap()
            .lines()
            .count()
    };
    assert!(count("vram.allocated") > 0);
    assert_eq!(count("vram.allocated"), count("vram.deallocated"));
    assert_eq!(count("model.sealed") + count("model.rejected"), 0);
}

#[test]
fn a_device_index_without_the_cuda_backend_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    sealtrail(dir.path()).arg("keygen").assert().success();
    big_model(&dir.path().join("m.safetensors"), 1, 64);
    for args in [
        vec!["demo", "--device", "7"],
        vec!["seal", "m.safetensors", "--device", "3"],
    ] {
        let out = sealtrail(dir.path()).args(&args).assert().code(2);
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(err.contains("needs --backend cuda"), "{args:?}: {err}");
    }
}
