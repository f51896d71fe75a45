//! Tampering with a log written by the real logger: every edit, deletion,
//! reordering, replay, truncation and segment-level change is reported by
//! the verifier, with the right kind, at the first bad record.

mod common;

use std::fs;
use std::path::Path;

use audit_logging::segment_name;
use audit_logging::verify::FindingKind;
use common::{
    Located, assert_finding_at, assert_intact, copy_log, finding, key, other_key, rebase, records,
    verify, write_log,
};
use tempfile::TempDir;

/// Small enough that the 17 records of [`Log::write`] spread over six
/// segments of three records at most, each after the first opened by the
/// manifest of the one before.
const SEGMENT_BYTES: u64 = 1600;

/// A pristine log and its records.
struct Log {
    dir: TempDir,
    records: Vec<Located>,
}

impl Log {
    /// Ten events in several segments, under `key`: seventeen records with
    /// the start, the stop and five manifests (records 4, 7, 10, 13, 16).
    fn write_with(key: &audit_logging::AuditKey) -> Log {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), key, 10, SEGMENT_BYTES);
        let records = records(dir.path());
        assert_eq!(records.len(), 17);
        let segments = common::segments(dir.path()).len();
        assert!(segments >= 4, "only {segments} segments");
        Log { dir, records }
    }

    fn write() -> Log {
        Log::write_with(&key())
    }

    /// A copy of the log with `edit` applied to it.
    fn tampered(&self, edit: impl FnOnce(&Path)) -> TempDir {
        let copy = copy_log(self.dir.path());
        edit(copy.path());
        copy
    }

    /// Record `seq` (1-based).
    fn rec(&self, seq: u64) -> &Located {
        &self.records[seq as usize - 1]
    }

    /// Whether `rec` is the last line of its segment.
    fn ends_segment(&self, rec: &Located) -> bool {
        self.records
            .get(rec.seq as usize)
            .is_none_or(|next| next.segment != rec.segment)
    }

    /// The segment files, in log order, by name.
    fn segment_names(&self) -> Vec<String> {
        common::segments(self.dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect()
    }
}

/// Where a finding about `rec`'s whole segment is reported: the segment
/// itself, line 0, at record `rec.seq`.
fn whole(rec: &Located) -> Located {
    Located {
        line: 0,
        offset: 0,
        ..rec.clone()
    }
}

/// Rewrites the lines of `segment` (a file name) in `dir`.
fn edit_lines(dir: &Path, segment: &Path, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let path = rebase(segment, dir);
    let data = fs::read(&path).unwrap();
    let mut lines: Vec<Vec<u8>> = data
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap().to_vec())
        .collect();
    edit(&mut lines);
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    fs::write(&path, out).unwrap();
}

/// Sets one byte of a file.
fn set_byte(path: &Path, offset: u64, byte: u8) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize] = byte;
    fs::write(path, data).unwrap();
}

/// A lowercase hex digit other than `b`.
fn other_hex(b: u8) -> u8 {
    if b == b'0' { b'1' } else { b'0' }
}

fn find(line: &[u8], needle: &[u8]) -> usize {
    line.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{} not in line", String::from_utf8_lossy(needle)))
        + needle.len()
}

/// Where in a record line one byte is changed, to what, and what the
/// verifier must call it.
#[derive(Debug, Clone, Copy)]
enum Spot {
    /// The first byte, `{`, becomes `[`.
    Opening,
    /// The last digit of `seq`, to another digit.
    SeqDigit,
    /// A digit of the microseconds in `ts`.
    TimeDigit,
    /// A hex digit of `kid`.
    KeyIdHex,
    /// A hex digit of `prev`, to another hex digit.
    PrevHex,
    /// A hex digit of `prev`, to a non-hex letter.
    PrevNonHex,
    /// A letter of the event's type name.
    EventByte,
    /// A hex digit of `mac`, to another hex digit.
    MacHex,
    /// A hex digit of `mac`, to uppercase (same value, other spelling).
    MacUppercase,
}

impl Spot {
    const ALL: [Spot; 9] = [
        Spot::Opening,
        Spot::SeqDigit,
        Spot::TimeDigit,
        Spot::KeyIdHex,
        Spot::PrevHex,
        Spot::PrevNonHex,
        Spot::EventByte,
        Spot::MacHex,
        Spot::MacUppercase,
    ];

    /// `(index in line, new byte, expected finding)`.
    fn apply(self, line: &[u8]) -> (usize, u8, FindingKind) {
        use FindingKind::*;
        match self {
            Spot::Opening => (0, b'[', Malformed),
            Spot::SeqDigit => {
                let start = find(line, b"\"seq\":");
                let digits = line[start..].iter().take_while(|b| b.is_ascii_digit());
                let i = start + digits.count() - 1;
                (i, b'0' + (line[i] - b'0' + 1) % 10, Modified)
            }
            Spot::TimeDigit => {
                // "2026-12-03T18:45:51.123456Z": the last microsecond digit.
                let i = find(line, b"\"ts\":\"") + 25;
                (i, b'0' + (line[i] - b'0' + 1) % 10, Modified)
            }
            // Changing the key id makes the record name another key; after
            // records that did authenticate, that is tampering, not a wrong key.
            Spot::KeyIdHex => {
                let i = find(line, b"\"kid\":\"") + 3;
                let first = line.starts_with(
                    format!("{{\"v\":{},\"seq\":1,", audit_logging::SCHEMA_VERSION).as_bytes(),
                );
                (
                    i,
                    other_hex(line[i]),
                    if first { KeyMismatch } else { Modified },
                )
            }
            Spot::PrevHex => {
                let i = find(line, b"\"prev\":\"") + 5;
                (i, other_hex(line[i]), Modified)
            }
            Spot::PrevNonHex => (find(line, b"\"prev\":\"") + 5, b'g', Malformed),
            Spot::EventByte => {
                let i = find(line, b"\"event\":{\"type\":\"") + 1;
                (i, if line[i] == b'x' { b'y' } else { b'x' }, Modified)
            }
            Spot::MacHex => {
                let i = line.len() - 12;
                (i, other_hex(line[i]), Modified)
            }
            // Only lowercase is ever written: one record, one spelling.
            Spot::MacUppercase => (line.len() - 12, b'A', Malformed),
        }
    }
}

#[test]
fn one_changed_byte_anywhere_in_any_record_is_reported_at_that_record() {
    let log = Log::write();
    for rec in &log.records {
        for spot in Spot::ALL {
            let (i, byte, kind) = spot.apply(&rec.bytes);
            assert_ne!(rec.bytes[i], byte, "{spot:?} must change the byte");
            let copy = log.tampered(|dir| {
                set_byte(&rebase(&rec.segment, dir), rec.offset + i as u64, byte);
            });
            let report = verify(copy.path(), &key());
            let f = report
                .finding
                .as_ref()
                .unwrap_or_else(|| panic!("{spot:?} in record {} went unnoticed", rec.seq));
            assert_finding_at(f, kind, rec);
            assert_eq!(report.records, rec.seq - 1, "{spot:?}: {f}");
        }
    }
}

#[test]
fn a_changed_newline_of_any_record_is_reported_at_that_record() {
    let log = Log::write();
    for rec in &log.records {
        let copy = log.tampered(|dir| {
            set_byte(
                &rebase(&rec.segment, dir),
                rec.offset + rec.bytes.len() as u64,
                b' ',
            );
        });
        // Inside a segment the record runs into the next one; at the end of
        // a segment it has no line end at all.
        let kind = if log.ends_segment(rec) {
            FindingKind::Truncated
        } else {
            FindingKind::Malformed
        };
        assert_finding_at(&finding(copy.path(), &key()), kind, rec);
    }
}

#[test]
fn a_deleted_record_is_reported_where_it_is_missing() {
    let log = Log::write();
    // The last record is left out: see the blind-spot test below.
    for rec in &log.records[..log.records.len() - 1] {
        let copy = log.tampered(|dir| {
            edit_lines(dir, &rec.segment, |lines| {
                lines.remove(rec.line as usize - 1);
            });
        });
        let f = finding(copy.path(), &key());
        if log.ends_segment(rec) {
            // The manifest opening the next segment says it ended later.
            assert_finding_at(&f, FindingKind::SegmentShortened, &whole(rec));
        } else {
            assert_finding_at(&f, FindingKind::Missing, rec);
        }
    }
}

#[test]
fn removing_whole_records_from_the_end_is_the_documented_blind_spot() {
    let log = Log::write();
    let last = log.rec(17);
    let copy = log.tampered(|dir| {
        edit_lines(dir, &last.segment, |lines| {
            lines.pop();
        });
    });
    // A shorter chain that is still consistent: nothing local can tell.
    let report = assert_intact(copy.path(), &key());
    assert_eq!(report.last_seq, 16);
}

#[test]
fn two_swapped_records_are_reported_at_the_first_of_them() {
    let log = Log::write();
    // Neighbours in one segment, and neighbours across a segment boundary.
    for (a, b) in [(5, 6), (2, 3), (3, 4), (1, 17)] {
        let (ra, rb) = (log.rec(a), log.rec(b));
        let copy = log.tampered(|dir| {
            let (la, lb) = (ra.bytes.clone(), rb.bytes.clone());
            edit_lines(dir, &ra.segment, |lines| lines[ra.line as usize - 1] = lb);
            edit_lines(dir, &rb.segment, |lines| lines[rb.line as usize - 1] = la);
        });
        assert_finding_at(&finding(copy.path(), &key()), FindingKind::Missing, ra);
    }
}

#[test]
fn a_replayed_copy_of_any_record_is_reported_as_out_of_order() {
    let log = Log::write();
    for rec in &log.records {
        let copy = log.tampered(|dir| {
            edit_lines(dir, &rec.segment, |lines| {
                lines.insert(rec.line as usize, rec.bytes.clone());
            });
        });
        let replay = Located {
            line: rec.line + 1,
            offset: rec.offset + rec.bytes.len() as u64 + 1,
            seq: rec.seq + 1,
            ..rec.clone()
        };
        assert_finding_at(
            &finding(copy.path(), &key()),
            FindingKind::OutOfOrder,
            &replay,
        );
    }
}

#[test]
fn an_old_record_replayed_at_the_end_of_the_log_is_reported() {
    let log = Log::write();
    let last = log.rec(17);
    let copy = log.tampered(|dir| {
        edit_lines(dir, &last.segment, |lines| {
            lines.push(log.rec(4).bytes.clone());
        });
    });
    let replay = Located {
        line: last.line + 1,
        offset: last.offset + last.bytes.len() as u64 + 1,
        seq: 18,
        ..last.clone()
    };
    assert_finding_at(
        &finding(copy.path(), &key()),
        FindingKind::OutOfOrder,
        &replay,
    );
}

#[test]
fn a_record_from_another_log_under_the_same_key_breaks_the_link() {
    let log = Log::write();
    let other = Log::write();
    for seq in [2, 5, 8, 17] {
        let rec = log.rec(seq);
        let copy = log.tampered(|dir| {
            edit_lines(dir, &rec.segment, |lines| {
                lines[rec.line as usize - 1] = other.rec(seq).bytes.clone();
            });
        });
        // Authentic, right number, wrong predecessor.
        assert_finding_at(&finding(copy.path(), &key()), FindingKind::BrokenLink, rec);
    }
    // The other log's manifest of the first segment is authentic too, and
    // seals other bytes: which of the two was swapped cannot be told, and
    // the finding names the segment that no longer matches.
    let copy = log.tampered(|dir| {
        edit_lines(dir, &log.rec(4).segment, |lines| {
            lines[0] = other.rec(4).bytes.clone();
        });
    });
    let f = finding(copy.path(), &key());
    assert_eq!(f.kind, FindingKind::SegmentAltered, "{f}");
    assert_eq!(f.segment.file_name(), log.rec(1).segment.file_name());
}

#[test]
fn a_record_forged_under_another_key_is_reported_as_modified() {
    let log = Log::write();
    let forged = Log::write_with(&other_key());
    let rec = log.rec(6);
    let copy = log.tampered(|dir| {
        edit_lines(dir, &rec.segment, |lines| {
            lines[rec.line as usize - 1] = forged.rec(6).bytes.clone();
        });
    });
    let f = finding(copy.path(), &key());
    assert_finding_at(&f, FindingKind::Modified, rec);
    assert!(f.detail.contains(other_key().id().as_str()), "{f}");
}

#[test]
fn a_file_cut_inside_any_record_is_reported_as_truncated_there() {
    let log = Log::write();
    for rec in &log.records {
        for keep in [1, rec.bytes.len() / 2, rec.bytes.len()] {
            let copy = log.tampered(|dir| {
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(rebase(&rec.segment, dir))
                    .unwrap();
                file.set_len(rec.offset + keep as u64).unwrap();
            });
            let report = verify(copy.path(), &key());
            let f = report.finding.as_ref().expect("truncation went unnoticed");
            assert_finding_at(f, FindingKind::Truncated, rec);
            assert_eq!(report.records, rec.seq - 1);
        }
    }
}

#[test]
fn a_middle_segment_cut_at_a_record_boundary_is_reported_shortened_by_name() {
    let log = Log::write();
    // Records 5 and 6 end the second segment; keep only record 4.
    let (kept, dropped) = (log.rec(4), log.rec(5));
    assert!(!log.ends_segment(kept) && log.ends_segment(log.rec(6)));
    let copy = log.tampered(|dir| {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(rebase(&kept.segment, dir))
            .unwrap();
        file.set_len(dropped.offset).unwrap();
    });
    let at = Located {
        seq: 5,
        ..whole(kept)
    };
    let f = finding(copy.path(), &key());
    assert_finding_at(&f, FindingKind::SegmentShortened, &at);
    assert!(f.detail.contains("records 5 to 6 are missing"), "{f}");
}

#[test]
fn a_closed_segment_replaced_by_an_older_copy_of_itself_is_reported_shortened_by_name() {
    // A copy of the second segment taken while it held only records 4 and 5.
    let dir = tempfile::tempdir().unwrap();
    let config = audit_logging::LoggerConfig::new(dir.path()).max_segment_bytes(SEGMENT_BYTES);
    let logger = audit_logging::AuditLogger::open(config, key()).unwrap();
    for i in 0..3 {
        logger
            .emit_sync(common::tagged(&format!("e{i}"), i))
            .unwrap();
    }
    logger.flush().unwrap();
    let second = dir.path().join(segment_name(4));
    let older = fs::read(&second).unwrap();
    assert_eq!(
        records(dir.path()).len(),
        5,
        "the copy holds records 4 and 5"
    );
    for i in 3..10 {
        logger
            .emit_sync(common::tagged(&format!("e{i}"), i))
            .unwrap();
    }
    logger.shutdown().unwrap();

    fs::write(&second, &older).unwrap();
    let f = finding(dir.path(), &key());
    assert_eq!(
        (f.kind, f.segment.file_name(), f.expected_seq),
        (FindingKind::SegmentShortened, second.file_name(), 6),
        "{f}"
    );
    assert!(f.detail.contains("an older copy of it"), "{f}");
}

#[test]
fn a_deleted_middle_segment_is_reported_missing_by_name() {
    let log = Log::write();
    let names = log.segment_names();
    for gone in 1..names.len() - 1 {
        let copy = log.tampered(|dir| fs::remove_file(dir.join(&names[gone])).unwrap());
        let next_first = log
            .records
            .iter()
            .find(|r| r.segment.file_name().unwrap() == names[gone + 1].as_str())
            .unwrap();
        let first_gone = log
            .records
            .iter()
            .find(|r| r.segment.file_name().unwrap() == names[gone].as_str())
            .unwrap();
        assert_eq!(next_first.line, 1);
        assert_finding_at(
            &finding(copy.path(), &key()),
            FindingKind::SegmentMissing,
            &whole(first_gone),
        );
    }
}

#[test]
fn a_deleted_first_segment_is_reported_missing_by_name() {
    let log = Log::write();
    let names = log.segment_names();
    let copy = log.tampered(|dir| fs::remove_file(dir.join(&names[0])).unwrap());
    let f = finding(copy.path(), &key());
    assert_finding_at(&f, FindingKind::SegmentMissing, &whole(log.rec(1)));
    assert!(f.detail.contains("with records 1 to 3"), "{f}");
}

#[test]
fn a_first_segment_deleted_with_the_manifest_that_sealed_it_is_a_log_that_does_not_begin_at_one() {
    // Without the manifest there is nothing to name the segment by: the
    // log simply does not begin at record 1.
    let log = Log::write();
    let names = log.segment_names();
    let copy = log.tampered(|dir| {
        fs::remove_file(dir.join(&names[0])).unwrap();
        edit_lines(dir, &log.rec(4).segment, |lines| {
            lines.remove(0);
        });
    });
    let f = finding(copy.path(), &key());
    assert_eq!(f.kind, FindingKind::SegmentMismatch, "{f}");
    assert!(f.detail.contains("records 1 to 3 are missing"), "{f}");
}

#[test]
fn a_segment_renamed_to_promise_another_first_record_is_reported() {
    let log = Log::write();
    // The second segment holds records 4 to 6; rename it up and down.
    let second = log.rec(4);
    for promised in [3, 5, 2] {
        let copy = log.tampered(|dir| {
            fs::rename(
                rebase(&second.segment, dir),
                dir.join(segment_name(promised)),
            )
            .unwrap();
        });
        let at = Located {
            segment: second.segment.with_file_name(segment_name(promised)),
            ..second.clone()
        };
        assert_finding_at(
            &finding(copy.path(), &key()),
            FindingKind::SegmentMismatch,
            &at,
        );
    }
}

#[test]
fn two_segments_with_swapped_names_are_reported_at_the_first() {
    let log = Log::write();
    let (a, b) = (log.rec(4), log.rec(7));
    let copy = log.tampered(|dir| {
        let tmp = dir.join("swap.tmp");
        fs::rename(rebase(&a.segment, dir), &tmp).unwrap();
        fs::rename(rebase(&b.segment, dir), rebase(&a.segment, dir)).unwrap();
        fs::rename(&tmp, rebase(&b.segment, dir)).unwrap();
    });
    // The name is right for its place; the first record in it is not.
    assert_finding_at(&finding(copy.path(), &key()), FindingKind::Missing, a);
}

#[test]
fn verifying_with_another_key_is_a_key_mismatch_at_the_first_record() {
    let log = Log::write();
    let f = finding(log.dir.path(), &other_key());
    assert_finding_at(&f, FindingKind::KeyMismatch, log.rec(1));
    assert!(f.detail.contains(other_key().id().as_str()), "{f}");
}

#[test]
fn the_untouched_log_verifies_with_its_own_key() {
    let log = Log::write();
    let report = assert_intact(log.dir.path(), &key());
    assert_eq!((report.records, report.last_seq), (17, 17));
    assert_eq!(report.segments, log.segment_names().len() as u64);
}

#[test]
fn an_empty_segment_planted_under_a_wrong_name_is_reported() {
    let log = Log::write();
    let last = log.records.last().unwrap().seq;
    let copy = log.tampered(|dir| {
        let planted = dir.join(segment_name(last + 1000));
        fs::write(&planted, b"").unwrap();
    });
    let f = finding(copy.path(), &key());
    assert_eq!(f.kind, FindingKind::SegmentMismatch, "{f}");
    assert_eq!(f.expected_seq, last + 1);
    assert!(f.detail.starts_with("empty segment"), "{f}");
}

#[test]
fn an_empty_segment_under_the_next_records_name_is_fine() {
    let log = Log::write();
    let last = log.records.last().unwrap().seq;
    let copy = log.tampered(|dir| fs::write(dir.join(segment_name(last + 1)), b"").unwrap());
    assert!(verify(copy.path(), &key()).is_intact());
}
