use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use super::*;

/// A store config for tests: `max_segment_bytes` as given, default epochs.
pub(crate) fn test_config(max_segment_bytes: u64) -> StoreConfig {
    StoreConfig {
        max_segment_bytes,
        epoch_records: crate::forward::DEFAULT_EPOCH_RECORDS,
        epoch_interval: crate::forward::DEFAULT_EPOCH_INTERVAL,
        clock: Utc::now,
    }
}

/// Writes a one-record log whose record has sequence number `last_seq`, as a
/// long-running log that reached it would end.
pub(crate) fn write_log_ending_at(dir: &Path, key: &AuditKey, last_seq: u64) {
    let (mut store, _) = Store::open(dir, Some(key), test_config(1 << 20)).unwrap();
    store.head = ChainHead {
        last_seq: last_seq - 1,
        last_hash: [9; 32],
    };
    store.append(r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#).unwrap();
    store.sync().unwrap();
}

fn open(dir: &Path, key: &AuditKey) -> Result<(Store, Vec<TornTail>), OpenError> {
    Store::open(dir, Some(key), test_config(1 << 20))
}

const EVENT: &str = r#"{"type":"audit.logger_stopped","timestamp":"2026-12-03T12:00:00Z","records_written":1,"events_dropped":0}"#;

#[test]
fn segment_names_sort_in_log_order_and_parse_back() {
    assert_eq!(segment_name(42), "seg-00000000000000000042.jsonl");
    assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
    for bad in [
        "seg-42.jsonl",
        "seg-0000000000000000004x.jsonl",
        "torn-1.bin",
        "seg-+0000000000000000042.jsonl",
    ] {
        assert_eq!(parse_segment_name(bad), None, "{bad}");
    }
}

#[test]
fn new_store_is_private_and_starts_at_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let (store, torn) = open(&audit, &AuditKey::generate().unwrap()).unwrap();
    assert!(torn.is_empty());
    assert_eq!(
        store.head(),
        ChainHead {
            last_seq: 0,
            last_hash: GENESIS_HASH
        }
    );
    assert_eq!(
        fs::metadata(&audit).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let seg = audit.join(segment_name(1));
    assert_eq!(
        fs::metadata(seg).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn reopening_continues_from_the_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    for _ in 0..3 {
        store.append(EVENT).unwrap();
    }
    store.sync().unwrap();
    let head = store.head();
    drop(store);
    let (store, torn) = open(dir.path(), &key).unwrap();
    assert!(torn.is_empty());
    assert_eq!(store.head(), head);
    assert_eq!(head.last_seq, 3);
}

#[test]
fn torn_tail_is_cut_kept_aside_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    let head = store.head();
    drop(store);
    let seg = dir.path().join(segment_name(1));
    let clean_len = fs::metadata(&seg).unwrap().len();
    let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"seq\":2,\"ts\":\"2026").unwrap();

    let (store, torn) = open(dir.path(), &key).unwrap();
    let [torn] = torn.as_slice() else {
        panic!("expected one torn tail, got {torn:?}");
    };
    assert_eq!(torn.offset, clean_len);
    assert_eq!(torn.bytes, 25);
    assert_eq!(store.head(), head);
    assert_eq!(fs::metadata(&seg).unwrap().len(), clean_len);
    // Kept under its pending name until the recovery is recorded.
    let pending = dir
        .path()
        .join(format!("{}{PENDING_SUFFIX}", torn.set_aside_as));
    assert_eq!(
        fs::read(&pending).unwrap(),
        b"{\"v\":1,\"seq\":2,\"ts\":\"2026"
    );
    drop(store);

    // An open that never got to record it reports the same tail again,
    // from its side file.
    let (store, again) = open(dir.path(), &key).unwrap();
    assert_eq!(again.as_slice(), std::slice::from_ref(torn));
    drop(store);

    // A crash after the copy but before the cut leaves the tail in the
    // segment too: the copy is reused, not made twice.
    let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"seq\":2,\"ts\":\"2026").unwrap();
    let (store, again) = open(dir.path(), &key).unwrap();
    assert_eq!(again.as_slice(), std::slice::from_ref(torn));
    assert_eq!(fs::metadata(&seg).unwrap().len(), clean_len);

    // Once recorded, it takes its final name and is reported no more.
    settle_torn(dir.path(), &again).unwrap();
    assert!(!pending.exists());
    let kept = fs::read(dir.path().join(&torn.set_aside_as)).unwrap();
    assert_eq!(kept, b"{\"v\":1,\"seq\":2,\"ts\":\"2026");
    drop(store);
    assert!(open(dir.path(), &key).unwrap().1.is_empty());
}

#[test]
fn only_well_formed_side_file_names_count_as_pending_torn_tails() {
    assert_eq!(
        parse_torn_name("torn-seg-00000000000000000042-1234-1764800000000.bin"),
        Some((segment_name(42), 1234))
    );
    for bad in [
        "torn-seg-00000000000000000042-1234.bin",
        "torn-seg-00000000000000000042-x-1764800000000.bin",
        "torn-seg-42-1234-1764800000000.bin",
        "torn-../../etc-1-2.bin",
        "torn-seg-00000000000000000042-1234-1764800000000.txt",
        "seg-00000000000000000042-1234-1764800000000.bin",
    ] {
        assert_eq!(parse_torn_name(bad), None, "{bad}");
    }
}

#[test]
fn an_oversized_pending_side_file_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    drop(open(dir.path(), &key).unwrap());
    let name = format!("torn-seg-00000000000000000001-0-1764800000000.bin{PENDING_SUFFIX}");
    let big = vec![b'x'; 2 * (MAX_RECORD_BYTES + 1) + 1];
    fs::write(dir.path().join(&name), big).unwrap();
    let err = open(dir.path(), &key).err().unwrap();
    assert!(err.to_string().contains("move it out"), "{err}");
}

#[test]
fn wrong_key_cannot_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), &AuditKey::generate().unwrap()).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);
    let err = open(dir.path(), &AuditKey::generate().unwrap())
        .err()
        .unwrap();
    assert!(matches!(err, OpenError::ForeignTrail { .. }), "{err}");
    // Without the writer key, the tail itself refuses the wrong key.
    fs::remove_file(dir.path().join(WRITER_KEY_FILE)).unwrap();
    let err = open(dir.path(), &AuditKey::generate().unwrap())
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::TailNotAuthentic { seq: 1, .. }),
        "{err}"
    );
}

#[test]
fn a_modified_tail_in_the_writers_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);
    let seg = dir.path().join(segment_name(1));
    let text = fs::read_to_string(&seg)
        .unwrap()
        .replace("\"records_written\":1", "\"records_written\":2");
    fs::write(&seg, text).unwrap();
    let err = open(dir.path(), &key).err().unwrap();
    assert!(
        matches!(err, OpenError::TailNotAuthentic { seq: 1, .. }),
        "{err}"
    );
}

#[test]
fn resuming_needs_no_audit_key_and_opens_a_new_epoch_with_a_handover() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);
    let (mut store, _) = Store::open(dir.path(), None, test_config(1 << 20)).unwrap();
    assert_eq!(store.head().last_seq, 1);
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    assert_eq!(store.key.epoch(), 1);
    assert_eq!(
        EpochKey::load(&dir.path().join(WRITER_KEY_FILE))
            .unwrap()
            .epoch(),
        1
    );
    let text = fs::read_to_string(dir.path().join(segment_name(1))).unwrap();
    let records: Vec<RawRecord> = text
        .lines()
        .map(|l| RawRecord::parse(l.as_bytes()).unwrap())
        .collect();
    assert!(!records[0].is_handover());
    assert!(records[1].is_handover());
    assert!(records[1].authenticate_handover(&EpochKey::first(&key)));
}

#[test]
fn a_new_trail_cannot_be_started_without_the_audit_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(dir.path(), None, test_config(1 << 20))
        .err()
        .unwrap();
    assert!(matches!(err, OpenError::NoWriterKey { .. }), "{err}");
}

#[test]
fn the_key_evolves_every_epoch_records_and_is_saved_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let config = StoreConfig {
        epoch_records: 3,
        ..test_config(1 << 20)
    };
    let (mut store, _) = Store::open(dir.path(), Some(&key), config).unwrap();
    for _ in 0..7 {
        store.append(EVENT).unwrap();
    }
    store.sync().unwrap();
    // Records 1-3 in epoch 0, 4-6 in epoch 1, 7 in epoch 2.
    assert_eq!(store.key.epoch(), 2);
    let saved = EpochKey::load(&dir.path().join(WRITER_KEY_FILE)).unwrap();
    assert_eq!(saved.epoch(), 2);
    let text = fs::read_to_string(dir.path().join(segment_name(1))).unwrap();
    let epochs: Vec<u64> = text
        .lines()
        .map(|l| RawRecord::parse(l.as_bytes()).unwrap().epoch)
        .collect();
    assert_eq!(epochs, [0, 0, 0, 1, 1, 1, 2]);
}

#[test]
fn world_readable_segment_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    drop(open(dir.path(), &key).unwrap());
    let seg = dir.path().join(segment_name(1));
    fs::set_permissions(&seg, fs::Permissions::from_mode(0o644)).unwrap();
    let err = open(dir.path(), &key).err().unwrap();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn segments_rotate_at_the_size_limit_and_names_follow_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = Store::open(dir.path(), Some(&key), test_config(600)).unwrap();
    for _ in 0..5 {
        store.append(EVENT).unwrap();
    }
    store.sync().unwrap();
    let names: Vec<u64> = list_segments(dir.path())
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.len() > 1, "{names:?}");
    assert_eq!(names[0], 1);
    assert!(names.windows(2).all(|w| w[0] < w[1]));
}

thread_local! {
    /// The time [`injected_clock`] reports on this test's thread.
    static NOW: std::cell::Cell<DateTime<Utc>> =
        const { std::cell::Cell::new(DateTime::UNIX_EPOCH) };
}

/// A clock that says what the test set with [`set_now`]; no sleeping.
fn injected_clock() -> DateTime<Utc> {
    NOW.with(std::cell::Cell::get)
}

fn set_now(rfc3339: &str) {
    let at = DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc();
    NOW.with(|now| now.set(at));
}

fn open_with_injected_clock(dir: &Path, key: &AuditKey) -> Store {
    let config = StoreConfig {
        clock: injected_clock,
        ..test_config(1 << 20)
    };
    Store::open(dir, Some(key), config).unwrap().0
}

/// The UTC dates of the records in each segment, in log order.
fn days_by_segment(dir: &Path) -> Vec<(u64, Vec<String>)> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(first, path)| {
            let days = fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| {
                    RawRecord::parse(l.as_bytes())
                        .unwrap()
                        .ts
                        .date_naive()
                        .to_string()
                })
                .collect();
            (first, days)
        })
        .collect()
}

#[test]
fn records_of_two_utc_days_land_in_two_segments_and_a_restart_continues_the_right_one() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let mut store = open_with_injected_clock(dir.path(), &key);
    set_now("2026-12-03T23:59:59.999999Z");
    store.append(EVENT).unwrap();
    store.append(EVENT).unwrap();
    set_now("2026-12-04T00:00:00Z");
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);

    // A restart later the same day continues the day's segment.
    set_now("2026-12-04T08:00:00+05:00");
    let mut store = open_with_injected_clock(dir.path(), &key);
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);
    // A restart on the next day starts a new one.
    set_now("2026-12-05T00:00:01Z");
    let mut store = open_with_injected_clock(dir.path(), &key);
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);

    // Each later segment opens with the manifest of the one before it.
    let day = |d: &str, n: usize| vec![d.to_owned(); n];
    assert_eq!(
        days_by_segment(dir.path()),
        [
            (1, day("2026-12-03", 2)),
            (3, day("2026-12-04", 3)),
            (6, day("2026-12-05", 2)),
        ]
    );
    assert_manifests_match(dir.path());
    let report = crate::verify_dir(dir.path(), &key).unwrap();
    assert!(report.is_intact(), "{:?}", report.finding);
    assert_eq!((report.records, report.segments), (7, 3));
}

/// Checks that every segment but the first opens with an
/// `audit.segment_closed` record that describes the segment before it
/// exactly.
fn assert_manifests_match(dir: &Path) {
    let segments = list_segments(dir).unwrap();
    for pair in segments.windows(2) {
        let [(first, closed), (_, next)] = pair else {
            unreachable!()
        };
        let bytes = fs::read(closed).unwrap();
        let lines: Vec<&[u8]> = bytes
            .strip_suffix(b"\n")
            .unwrap()
            .split(|&b| b == b'\n')
            .collect();
        let last = RawRecord::parse(lines.last().unwrap()).unwrap().seq;
        let opening = fs::read_to_string(next).unwrap();
        let opening = RawRecord::parse(opening.lines().next().unwrap().as_bytes()).unwrap();
        let event = opening.event().unwrap();
        assert_eq!(
            event,
            crate::AuditEvent::SegmentClosed {
                timestamp: event.timestamp(),
                segment: file_name(closed).into(),
                first_seq: *first,
                last_seq: last,
                records: lines.len() as u64,
                sha256: Digest(Sha256::digest(&bytes).into()),
                root: Some(Digest(records_root(&lines).0)),
            },
            "the manifest at the start of {}",
            next.display()
        );
    }
}

/// The RFC 9162 root over `lines`, computed from the leaves with the
/// reference definition (not the writer's frontier).
fn records_root(lines: &[&[u8]]) -> crate::merkle::Hash {
    let leaves: Vec<crate::merkle::Hash> = lines
        .iter()
        .map(|l| crate::merkle::leaf_hash(&Sha256::digest(l)))
        .collect();
    fn mth(leaves: &[crate::merkle::Hash]) -> crate::merkle::Hash {
        match leaves.len() {
            0 => crate::merkle::EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                crate::merkle::node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }
    mth(&leaves)
}

#[test]
fn every_closed_segment_is_described_by_a_manifest_opening_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = Store::open(dir.path(), Some(&key), test_config(1500)).unwrap();
    for _ in 0..12 {
        store.append(EVENT).unwrap();
    }
    store.sync().unwrap();
    assert!(list_segments(dir.path()).unwrap().len() >= 4);
    assert_manifests_match(dir.path());
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn a_crash_before_the_manifest_is_written_is_repaired_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    // The crash: the next segment exists, its manifest never got written.
    store.rotate().unwrap();
    drop(store);
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    assert_eq!(list_segments(dir.path()).unwrap().len(), 2);
    assert_manifests_match(dir.path());
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn a_day_change_does_not_leave_an_empty_segment_behind() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    // The store is opened (creating seg-1) one day and written the next.
    set_now("2026-12-03T12:00:00Z");
    let mut store = open_with_injected_clock(dir.path(), &key);
    set_now("2026-12-04T12:00:00Z");
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    assert_eq!(
        days_by_segment(dir.path()),
        [(1, vec!["2026-12-04".to_owned()])]
    );
}

#[test]
fn the_record_envelope_bound_covers_the_longest_envelope() {
    let key = AuditKey::generate().unwrap();
    let first = EpochKey::first(&key);
    let mut second = first.clone();
    second.evolve().unwrap();
    let ts = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z")
        .unwrap()
        .to_utc();
    let json = "{}";
    let line = record::encode(u64::MAX, ts, &second, Some(&first), &[7; 32], json);
    // The epoch here has 1 digit; the longest has 20.
    let longest = line.len() + 1 - json.len() + 19;
    assert_eq!(longest, 351);
    assert!(longest as u64 <= RECORD_ENVELOPE_BYTES);
}

#[test]
fn symlinked_audit_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(open(&link, &AuditKey::generate().unwrap()).is_err());
}

/// Makes every later write of `store` fail, as a full or failed disk would.
pub(crate) fn break_writes(store: &mut Store, dir: &Path) {
    let (_, newest) = list_segments(dir).unwrap().pop().unwrap();
    store.file = fs::File::open(newest).unwrap();
}

/// Undoes [`break_writes`]: the disk takes writes again.
pub(crate) fn mend_writes(store: &mut Store, dir: &Path) {
    let (_, newest) = list_segments(dir).unwrap().pop().unwrap();
    store.file = super::fs::open_append(&newest).unwrap();
}

/// Makes the store behave as after an fsync that failed.
pub(crate) fn fail_fsync(store: &mut Store) {
    store.fsync_failed = true;
}

/// Every line of the segment `name` in `dir`, parsed.
fn parsed(dir: &Path, name: &str) -> Vec<RawRecord> {
    fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(|l| RawRecord::parse(l.as_bytes()).unwrap())
        .collect()
}

#[test]
fn a_refused_write_keeps_its_records_and_a_retry_writes_them_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    let seg = dir.path().join(segment_name(1));
    let good_len = fs::metadata(&seg).unwrap().len();

    break_writes(&mut store, dir.path());
    store.append(EVENT).unwrap();
    store.append(EVENT).unwrap();
    assert!(store.write_pending().is_err());
    assert!(store.sync().is_err());
    assert_eq!(store.pending_records(), 2);
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);

    mend_writes(&mut store, dir.path());
    store.sync().unwrap();
    assert!(!store.has_pending());
    let seqs: Vec<u64> = parsed(dir.path(), &segment_name(1))
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    drop(store);
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn the_part_of_a_failed_write_that_reached_the_file_is_cut_before_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    // As a write cut short by a full disk, whose cut failed too, leaves it.
    store.append(EVENT).unwrap();
    let half = store.pending.len() / 2;
    std::io::Write::write_all(&mut store.file, &store.pending[..half]).unwrap();
    store.overrun = true;

    store.sync().unwrap();
    assert_eq!(parsed(dir.path(), &segment_name(1)).len(), 2);
    drop(store);
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn after_a_failed_fsync_the_store_writes_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), &AuditKey::generate().unwrap()).unwrap();
    fail_fsync(&mut store);
    store.append(EVENT).unwrap();
    let err = store.sync().unwrap_err();
    assert!(err.to_string().contains("earlier fsync"), "{err}");
    assert_eq!(
        fs::metadata(dir.path().join(segment_name(1)))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_key_handover_the_disk_refuses_is_written_once_and_its_key_saved_later() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let config = StoreConfig {
        epoch_records: 1,
        ..test_config(1 << 20)
    };
    let (mut store, _) = Store::open(dir.path(), Some(&key), config).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    let key_path = dir.path().join(WRITER_KEY_FILE);

    break_writes(&mut store, dir.path());
    // A handover is due; it is queued, not lost, and the old key stays on
    // disk until the handover is.
    assert_eq!(store.append(EVENT).unwrap(), 2);
    // No second epoch starts while the first one's key is unsaved.
    assert_eq!(store.append(EVENT).unwrap(), 3);
    assert_eq!(EpochKey::load(&key_path).unwrap().epoch(), 0);
    assert!(store.sync().is_err());

    mend_writes(&mut store, dir.path());
    store.sync().unwrap();
    assert_eq!(EpochKey::load(&key_path).unwrap().epoch(), 1);
    let records = parsed(dir.path(), &segment_name(1));
    let handovers: Vec<u64> = records
        .iter()
        .filter(|r| r.is_handover())
        .map(|r| r.seq)
        .collect();
    assert_eq!(handovers, [2]);
    drop(store);
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
    // The next start continues with the saved key.
    open(dir.path(), &key).unwrap();
}

#[test]
fn a_rotation_whose_new_segment_was_left_empty_is_retried_into_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    // What a rotation leaves when the directory fsync after creating the
    // file fails: the file, empty, and the store still on the old segment.
    fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(dir.path().join(segment_name(2)))
        .unwrap();
    store.rotate().unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    assert_eq!(parsed(dir.path(), &segment_name(2)).len(), 2);
    drop(store);
    assert!(crate::verify_dir(dir.path(), &key).unwrap().is_intact());
}

#[test]
fn a_rotation_never_reuses_a_segment_that_has_bytes_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path(), &AuditKey::generate().unwrap()).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    fs::write(dir.path().join(segment_name(2)), b"planted\n").unwrap();
    fs::set_permissions(
        dir.path().join(segment_name(2)),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let err = store.rotate().unwrap_err();
    assert!(err.to_string().contains("move it out"), "{err}");
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let first = open(dir.path(), &key).unwrap();
    let err = open(dir.path(), &key).err().unwrap();
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another writer"), "{err}");
    drop(first);
    open(dir.path(), &key).unwrap();
}

#[test]
fn a_directory_others_can_write_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let err = open(dir.path(), &AuditKey::generate().unwrap())
        .err()
        .unwrap();
    assert!(err.to_string().contains("chmod 700"), "{err}");
}

#[test]
fn an_empty_newest_segment_under_the_wrong_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);
    let planted = dir.path().join(segment_name(99_999));
    fs::write(&planted, b"").unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).unwrap();
    let err = open(dir.path(), &key).err().unwrap();
    assert!(matches!(err, OpenError::CorruptTail { .. }), "{err}");
    assert!(err.to_string().contains("next record is 2"), "{err}");
}

#[test]
fn a_newest_segment_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate().unwrap();
    let (mut store, _) = open(dir.path(), &key).unwrap();
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    drop(store);
    let seg = dir.path().join(segment_name(1));
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.jsonl");
    fs::rename(&seg, &target).unwrap();
    std::os::unix::fs::symlink(&target, &seg).unwrap();
    assert!(open(dir.path(), &key).is_err());
    // Nothing was written through the link.
    assert_eq!(fs::read_to_string(&target).unwrap().lines().count(), 1);
}

#[test]
fn every_file_the_store_creates_or_replaces_is_made_durable_in_the_directory() {
    use super::fs::tests::entries_synced_by;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let key = AuditKey::generate().unwrap();

    // A new trail: its segment and its writer key.
    let mut store = None;
    let synced = entries_synced_by(|| store = Some(open(dir, &key).unwrap().0));
    let mut store = store.unwrap();
    assert!(synced.contains(&dir.join(segment_name(1))), "{synced:?}");
    assert!(synced.contains(&dir.join(WRITER_KEY_FILE)), "{synced:?}");

    // A rotation's new segment.
    store.append(EVENT).unwrap();
    let synced = entries_synced_by(|| store.rotate().unwrap());
    assert_eq!(synced, [dir.join(segment_name(2))]);

    // A key handover replacing the writer key.
    store.append(EVENT).unwrap();
    store.sync().unwrap();
    store.config.epoch_records = 1;
    let synced = entries_synced_by(|| {
        store.append(EVENT).unwrap();
    });
    assert_eq!(synced, [dir.join(WRITER_KEY_FILE)]);
    drop(store);

    // A torn tail set aside.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(dir.join(segment_name(2)))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":2,\"seq\"").unwrap();
    let mut torn = Vec::new();
    let synced = entries_synced_by(|| torn = open(dir, &key).unwrap().1);
    let aside = dir.join(format!("{}{PENDING_SUFFIX}", torn[0].set_aside_as));
    assert!(synced.contains(&aside), "{synced:?}");
    // And its final name, once recorded.
    let synced = entries_synced_by(|| settle_torn(dir, &torn).unwrap());
    assert!(
        synced.contains(&dir.join(&torn[0].set_aside_as)),
        "{synced:?}"
    );
}
