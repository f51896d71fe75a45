//! A real full disk: a small file system (`.ci/run` mounts a 1 MiB tmpfs
//! and names it in [`SMALL_FS_VAR`]) filled up while the logger writes.
//! Writes fail cleanly, nothing written before is damaged, and once space
//! is freed writing resumes and the whole trail verifies.
//!
//! Without [`SMALL_FS_VAR`] the test says it skipped; with
//! [`REQUIRE_VAR`]` = 1` (set by `.ci/run`) it fails instead.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use audit_logging::{EmitError, FlushError, Health, segment_name};
use common::{assert_intact, key, open, tag_counts, tagged};

/// The mount point of a small, writable file system the test may fill.
const SMALL_FS_VAR: &str = "SEALTRAIL_SMALL_FS";
/// Set to `1` where skipping is a failure.
const REQUIRE_VAR: &str = "SEALTRAIL_REQUIRE_SMALL_FS";

/// How many times the test asks the writer to retry after space returns
/// before it gives up; each retry is one flush, spaced by [`RETRY_PAUSE`].
const RETRIES: u32 = 50;
const RETRY_PAUSE: Duration = Duration::from_millis(100);

fn small_fs() -> Option<PathBuf> {
    match std::env::var_os(SMALL_FS_VAR) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => {
            panic!("{REQUIRE_VAR}=1 but {SMALL_FS_VAR} names no small file system")
        }
        None => {
            eprintln!("skipped: set {SMALL_FS_VAR} to a small file system to run this test");
            None
        }
    }
}

/// Writes to `path` until the file system is full; returns the bytes
/// written.
fn fill(path: &Path) -> u64 {
    let mut filler = fs::File::create(path).unwrap();
    let chunk = vec![0xf1u8; 4096];
    let mut written = 0u64;
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Bytes the page cache took past the end are refused here, if at all.
    let _ = filler.sync_all();
    written
}

#[test]
fn a_full_file_system_refuses_writes_cleanly_and_writing_resumes_when_space_is_freed() {
    let Some(root) = small_fs() else { return };
    // What an earlier run that failed half-way left would fill the file
    // system before this one starts.
    for entry in fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("filler-") {
            fs::remove_file(&path).unwrap();
        } else if name.starts_with("trail-") {
            fs::remove_dir_all(&path).unwrap();
        }
    }
    let dir = root.join(format!("trail-{}", std::process::id()));
    let filler = root.join(format!("filler-{}", std::process::id()));

    let logger = open(&dir, &key());
    for i in 0..20 {
        logger.emit_sync(tagged(&format!("before-{i}"), i)).unwrap();
    }
    logger.flush().unwrap();
    let seg = dir.join(segment_name(1));
    let before = fs::read(&seg).unwrap();

    assert!(fill(&filler) > 0, "the file system had no room to fill");
    // Records large enough that the last free bytes of the segment's page
    // cannot hold a whole batch: some writes land in part, and are cut.
    for i in 0..200 {
        logger
            .emit_sync(tagged(&format!("full-{i}-{}", "x".repeat(200)), i))
            .unwrap();
    }
    let flushed = logger.flush();
    let Err(FlushError::Degraded(why)) = &flushed else {
        panic!("flush on a full file system returned {flushed:?}");
    };
    assert!(why.contains("No space left"), "{why}");
    assert!(matches!(logger.health(), Health::Degraded { .. }));
    assert!(matches!(
        logger.emit_durable_sync(tagged("durable-while-full", 0)),
        Err(EmitError::Degraded(_))
    ));
    assert!(logger.stats().write_errors >= 1);

    // What was written before is intact, and the segment ends with a whole
    // record: no half line, for a crash now to leave behind.
    let now = fs::read(&seg).unwrap();
    assert_eq!(now[..before.len()], before[..]);
    assert!(now.ends_with(b"\n"));

    // Space returns: a retry writes everything kept, once and in order.
    fs::remove_file(&filler).unwrap();
    let mut resumed = false;
    for _ in 0..RETRIES {
        if logger.flush().is_ok() {
            resumed = true;
            break;
        }
        std::thread::sleep(RETRY_PAUSE);
    }
    assert!(resumed, "writing did not resume: {:?}", logger.health());
    assert_eq!(logger.health(), Health::Ok);
    logger.emit_durable_sync(tagged("after", 0)).unwrap();
    logger.shutdown().unwrap();

    let report = assert_intact(&dir, &key());
    assert_eq!(report.torn_tails_recovered, 0);
    let tags = tag_counts(&dir);
    assert!(tags.values().all(|&n| n == 1), "{tags:?}");
    assert!((0..20).all(|i| tags.contains_key(&format!("before-{i}"))));
    assert_eq!(tags.keys().filter(|t| t.starts_with("full-")).count(), 200);
    assert!(tags.contains_key("after"));
    assert!(!tags.contains_key("durable-while-full"));
    fs::remove_dir_all(&dir).unwrap();
}
