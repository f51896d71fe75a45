//! Unit tests of header reading and the whole-file digest. Hostile inputs
//! are covered end to end in `tests/hostile_safetensors_input_is_refused.rs`.

use std::io::{Cursor, Read as _, Write as _};

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use sha2::{Digest as _, Sha256};

use super::reader::ModelReader;
use super::*;

/// A safetensors file with tensors `b` (8 bytes), `a` (4 bytes), `c` (0
/// bytes), serialized by the `safetensors` crate itself.
fn fixture() -> Vec<u8> {
    let b = [1u8; 8];
    let a = [2u8; 4];
    let tensors = vec![
        ("b", TensorView::new(Dtype::F32, vec![2], &b).unwrap()),
        ("a", TensorView::new(Dtype::U8, vec![2, 2], &a).unwrap()),
        ("c", TensorView::new(Dtype::F16, vec![0], &[]).unwrap()),
    ];
    safetensors::serialize(tensors, None).unwrap()
}

fn parse(bytes: &[u8]) -> Result<SafetensorsFile, ModelError> {
    SafetensorsFile::read(
        &mut Cursor::new(bytes),
        bytes.len() as u64,
        Path::new("mem"),
    )
}

#[test]
fn tensors_come_back_in_data_order_with_their_layout() {
    let bytes = fixture();
    let file = parse(&bytes).unwrap();
    let total: u64 = file.tensors().iter().map(TensorEntry::bytes).sum();
    assert_eq!(total, 12);
    assert_eq!(file.data_bytes(), 12);
    assert_eq!(file.data_offset() + file.data_bytes(), file.file_bytes());
    let mut next = 0;
    for tensor in file.tensors() {
        assert_eq!(tensor.start, next);
        next = tensor.end;
    }
    let a = file.tensors().iter().find(|t| t.name == "a").unwrap();
    assert_eq!(
        (a.dtype.as_str(), a.shape.as_slice(), a.bytes()),
        ("U8", &[2, 2][..], 4)
    );
}

#[test]
fn header_read_leaves_the_reader_at_the_data() {
    let bytes = fixture();
    let mut cursor = Cursor::new(bytes.as_slice());
    let file = SafetensorsFile::read(&mut cursor, bytes.len() as u64, Path::new("mem")).unwrap();
    assert_eq!(cursor.position(), file.data_offset());
}

#[test]
fn plan_from_file_uses_tensor_sizes() {
    let file = parse(&fixture()).unwrap();
    let plan = file.plan(8).unwrap();
    assert_eq!(plan.shard_count(), 2);
    assert_eq!(plan.total_bytes(), 12);
}

#[test]
fn file_sha256_matches_one_shot_digest() {
    let bytes: Vec<u8> = (0..3 * STREAM_CHUNK_BYTES + 17)
        .map(|i| (i % 253) as u8)
        .collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes).unwrap();
    let expected: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(file_sha256(file.path()).unwrap().0, expected);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = SafetensorsFile::open(Path::new("/nonexistent/model.safetensors")).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/model.safetensors"),
        "{err}"
    );
}

#[test]
fn model_reader_digests_everything_it_reads() {
    let bytes = fixture();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes).unwrap();
    let mut reader = ModelReader::open(file.path()).unwrap();
    std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    let expected: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(reader.finish().unwrap().0, expected);
}

#[test]
fn model_reader_notices_a_file_that_grew() {
    let bytes = fixture();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes).unwrap();
    let mut reader = ModelReader::open(file.path()).unwrap();
    let data_bytes = reader.layout().data_bytes();
    std::io::copy(&mut (&mut reader).take(data_bytes), &mut std::io::sink()).unwrap();
    file.write_all(b"appended").unwrap();
    file.flush().unwrap();
    let err = reader.finish().unwrap_err();
    assert!(
        matches!(err, ModelError::ChangedWhileReading { .. }),
        "{err}"
    );
}
