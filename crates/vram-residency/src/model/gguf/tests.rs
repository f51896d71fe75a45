use std::path::Path;

use proptest::prelude::*;

use super::*;

/// Written by llama.cpp's gguf-py (`scripts/make-gguf-fixture.sh`).
const TINY: &[u8] = include_bytes!("../../../tests/data/gguf/tiny.gguf");

fn read(bytes: &[u8]) -> Result<GgufFile, ModelError> {
    let len = u64::try_from(bytes.len()).unwrap();
    GgufFile::read(&mut &bytes[..], len, Path::new("test.gguf"))
}

fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// One tensor info.
fn info(name: &str, dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut out = string(name);
    out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
    for d in dims {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out
}

/// A v3 file: `kv` holds `n_kv` metadata pairs, `infos` the tensor infos,
/// then padding to 32 and `data_len` data bytes.
fn file(n_kv: u64, kv: &[u8], infos: &[Vec<u8>], data_len: usize) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(infos.len() as u64).to_le_bytes());
    out.extend_from_slice(&n_kv.to_le_bytes());
    out.extend_from_slice(kv);
    for i in infos {
        out.extend_from_slice(i);
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    out.resize(out.len() + data_len, 0xab);
    out
}

fn invalid(bytes: &[u8], says: &str) {
    match read(bytes) {
        Err(ModelError::InvalidGguf { reason, .. }) => {
            assert!(reason.contains(says), "{reason:?} lacks {says:?}")
        }
        other => panic!("expected InvalidGguf({says:?}), got {other:?}"),
    }
}

#[test]
fn the_gguf_py_fixture_reads_with_padded_tensor_extents() {
    let file = read(TINY).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
    assert_eq!(file.data_offset(), 576);
    assert_eq!(file.file_bytes(), 768);
    let seen: Vec<_> = file
        .tensors()
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.dtype.as_str(),
                t.shape.clone(),
                t.start,
                t.end,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("embed.weight", "F32", vec![4, 3], 0, 64),
            ("norm.weight", "F16", vec![5], 64, 96),
            ("out.weight", "Q8_0", vec![32, 2], 96, 192),
        ]
    );
    // The reader is left at the data: the layout covers the file exactly.
    let layout = crate::model::ModelLayout::from(file);
    assert_eq!(layout.data_offset() + 192, layout.file_bytes());
}

#[test]
fn a_built_file_reads_and_the_last_padding_may_be_left_off() {
    let infos = [info("a", &[3], 0, 0), info("b", &[64], 8, 32)];
    // a: 12 bytes padded to 32; b: two Q8_0 blocks, 68 bytes, padded to 96.
    let padded = read(&file(0, &[], &infos, 32 + 96)).unwrap();
    assert_eq!(padded.tensors()[1].end, 128);
    let unpadded = read(&file(0, &[], &infos, 32 + 68)).unwrap();
    assert_eq!(unpadded.tensors()[1].end, 100);
    let err = read(&file(0, &[], &infos, 32 + 69)).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::DataLengthMismatch {
                expected: 128,
                found: 101
            }
        ),
        "{err}"
    );
    let err = read(&file(0, &[], &infos, 32 + 67)).unwrap_err();
    assert!(
        matches!(err, ModelError::DataLengthMismatch { .. }),
        "{err}"
    );
}

#[test]
fn magic_version_and_byte_order_are_checked() {
    let good = file(0, &[], &[info("a", &[1], 0, 0)], 32);
    let mut bad = good.clone();
    bad[0] = b'X';
    invalid(&bad, "bad magic");
    let mut v1 = good.clone();
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    invalid(&v1, "version 1");
    let mut big_endian = good.clone();
    big_endian[4..8].copy_from_slice(&3u32.to_be_bytes());
    invalid(&big_endian, "big-endian");
    invalid(b"GGU", "magic of 4 bytes runs past the end");
}

#[test]
fn hostile_counts_and_lengths_fail_at_their_bound_without_allocating() {
    // A tensor count over the limit.
    let mut many = file(0, &[], &[], 0);
    many[8..16].copy_from_slice(&(MAX_TENSORS + 1).to_le_bytes());
    invalid(&many, "exceed the limit");
    // A key length of u64::MAX.
    let mut kv = u64::MAX.to_le_bytes().to_vec();
    kv.extend_from_slice(b"k");
    invalid(&file(1, &kv, &[], 0), "metadata key of");
    // A string value whose length runs past the end.
    let mut kv = string("k");
    kv.extend_from_slice(&8u32.to_le_bytes());
    kv.extend_from_slice(&(1u64 << 40).to_le_bytes());
    invalid(&file(1, &kv, &[], 0), "past the end of the file");
    // An array of a billion u64s.
    let mut kv = string("k");
    kv.extend_from_slice(&9u32.to_le_bytes());
    kv.extend_from_slice(&10u32.to_le_bytes());
    kv.extend_from_slice(&(1u64 << 30).to_le_bytes());
    invalid(&file(1, &kv, &[], 0), "past the end");
    // An array of u64::MAX strings fails at the end of the file, not in time.
    let mut kv = string("k");
    kv.extend_from_slice(&9u32.to_le_bytes());
    kv.extend_from_slice(&8u32.to_le_bytes());
    kv.extend_from_slice(&u64::MAX.to_le_bytes());
    invalid(&file(1, &kv, &[], 0), "past the end");
    // A metadata count far above what the file holds.
    invalid(&file(u64::MAX, &[], &[], 0), "past the end");
}

#[test]
fn nested_arrays_are_bounded_in_depth() {
    let mut kv = string("k");
    kv.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..MAX_ARRAY_DEPTH {
        kv.extend_from_slice(&9u32.to_le_bytes());
        kv.extend_from_slice(&1u64.to_le_bytes());
    }
    kv.extend_from_slice(&0u32.to_le_bytes());
    kv.extend_from_slice(&1u64.to_le_bytes());
    kv.push(0);
    invalid(&file(1, &kv, &[], 0), "nested more than");
}

#[test]
fn metadata_types_and_alignment_are_checked() {
    let mut kv = string("k");
    kv.extend_from_slice(&13u32.to_le_bytes());
    invalid(&file(1, &kv, &[], 0), "unknown metadata value type 13");
    let mut kv = string("general.alignment");
    kv.extend_from_slice(&4u32.to_le_bytes());
    kv.extend_from_slice(&24u32.to_le_bytes());
    invalid(&file(1, &kv, &[], 0), "not a power of two");
    let mut kv = string("general.alignment");
    kv.extend_from_slice(&10u32.to_le_bytes());
    kv.extend_from_slice(&32u64.to_le_bytes());
    invalid(&file(1, &kv, &[], 0), "not a u32");
}

#[test]
fn tensor_infos_are_checked() {
    invalid(
        &file(0, &[], &[info("a", &[1], 99, 0)], 32),
        "unknown ggml type 99",
    );
    invalid(
        &file(0, &[], &[info("a", &[1, 1, 1, 1, 1], 0, 0)], 32),
        "5 dimensions",
    );
    invalid(
        &file(0, &[], &[info("a", &[31], 8, 0)], 64),
        "not a multiple",
    );
    invalid(
        &file(0, &[], &[info("a", &[u64::MAX, 2], 0, 0)], 0),
        "too many elements",
    );
    invalid(
        &file(0, &[], &[info("a", &[1 << 62], 0, 0)], 0),
        "too large",
    );
    // A gap, an overlap and a misplaced first tensor.
    let gap = [info("a", &[1], 0, 0), info("b", &[1], 0, 64)];
    invalid(&file(0, &[], &gap, 96), "expected 32");
    let overlap = [info("a", &[16], 0, 0), info("b", &[1], 0, 32)];
    invalid(&file(0, &[], &overlap, 96), "expected 64");
    invalid(&file(0, &[], &[info("a", &[1], 0, 32)], 64), "expected 0");
}

#[test]
fn every_truncation_of_the_fixture_is_an_error() {
    // Except the one that only drops the last tensor's padding (28 bytes).
    let unpadded = TINY.len() - 28;
    for len in 0..TINY.len() {
        let result = read(&TINY[..len]);
        assert_eq!(
            result.is_ok(),
            len == unpadded,
            "prefix of {len} bytes: {result:?}"
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut input = b"GGUF".to_vec();
        input.extend_from_slice(&bytes);
        let _ = read(&input);
        let _ = read(&bytes);
    }

    #[test]
    fn flipping_any_fixture_byte_never_panics(at in 0usize..768, bit in 0u8..8) {
        let mut bytes = TINY.to_vec();
        bytes[at] ^= 1 << bit;
        if let Ok(file) = read(&bytes) {
            let last = file.tensors().last().map_or(0, |t| t.end);
            prop_assert_eq!(file.data_offset() + last, file.file_bytes());
        }
    }
}
