//! Property test for the chain: rearranging whole, authentic records of a
//! real log (dropping, repeating, reordering) always yields a finding at the
//! first place the result departs from the original, unless the result is
//! the original cut after some record (the documented blind spot).

mod common;

use std::fs;
use std::sync::OnceLock;

use audit_logging::segment_name;
use audit_logging::verify::FindingKind;
use proptest::prelude::*;

/// The lines of a real 10-record log in one segment.
fn real_lines() -> &'static [Vec<u8>] {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        common::write_log(dir.path(), &common::key(), 8, u64::MAX);
        common::records(dir.path())
            .into_iter()
            .map(|r| r.bytes)
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rearranged_records_are_reported_at_the_first_departure(
        picks in prop::collection::vec(0usize..10, 0..14),
        prefix in 0usize..=10,
        use_prefix in any::<bool>(),
    ) {
        let lines = real_lines();
        // Half the cases start from an untouched prefix, so departures late
        // in the log are common too.
        let order: Vec<usize> = if use_prefix {
            (0..prefix).chain(picks).collect()
        } else {
            picks
        };
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        for &i in &order {
            data.extend_from_slice(&lines[i]);
            data.push(b'\n');
        }
        fs::write(dir.path().join(segment_name(1)), data).unwrap();
        let report = common::verify(dir.path(), &common::key());

        match order.iter().enumerate().position(|(at, &i)| at != i) {
            None => {
                prop_assert!(report.is_intact(), "{:?}", report.finding);
                prop_assert_eq!(report.last_seq, order.len() as u64);
            }
            Some(at) => {
                let f = report.finding.expect("a rearranged log verified");
                let kind = if order[at] > at {
                    FindingKind::Missing
                } else {
                    FindingKind::OutOfOrder
                };
                prop_assert_eq!(f.kind, kind);
                prop_assert_eq!(f.line, at as u64 + 1);
                prop_assert_eq!(f.expected_seq, at as u64 + 1);
                prop_assert_eq!(report.records, at as u64);
            }
        }
    }
}
