//! Hostile or broken safetensors files give a clear error, never a panic or
//! a huge allocation; `seal_model` records them as `model.rejected` and
//! allocates nothing.

mod common;

use std::path::Path;

use audit_logging::AuditEvent;
use vram_residency::model::MAX_HEADER_BYTES;
use vram_residency::{ModelError, SafetensorsFile, SealModelError, SealModelOptions};

/// A file made of a length prefix and a header, plus `data`.
fn framed(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    bytes
}

fn open(trail: &common::Trail, bytes: &[u8]) -> Result<SafetensorsFile, ModelError> {
    SafetensorsFile::open(&common::write_file(
        &trail.dir,
        "hostile.safetensors",
        bytes,
    ))
}

/// Seals `bytes` as a model and checks it was rejected with nothing left
/// allocated; returns the error.
fn seal_rejected(bytes: &[u8]) -> SealModelError {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 30);
    let path = common::write_file(&trail.dir, "hostile.safetensors", bytes);
    let err = manager
        .seal_model(&path, &SealModelOptions::new("hostile"), &mut |_| {})
        .unwrap_err();
    assert_eq!(manager.backend().allocation_count(), 0);
    match trail.events().last() {
        Some(AuditEvent::ModelRejected {
            model_ref, reason, ..
        }) => {
            assert_eq!(model_ref.as_str(), "hostile");
            assert_eq!(reason.as_str(), err.to_string());
        }
        other => panic!("expected model.rejected, got {other:?}"),
    }
    err
}

#[test]
fn file_shorter_than_the_prefix() {
    let trail = common::Trail::open();
    for bytes in [&b""[..], b"\x10\x00\x00"] {
        let err = open(&trail, bytes).unwrap_err();
        assert!(matches!(err, ModelError::TooShort { .. }), "{err}");
    }
}

#[test]
fn header_length_huge() {
    let trail = common::Trail::open();
    for claimed in [u64::MAX, MAX_HEADER_BYTES + 1] {
        let mut bytes = claimed.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let err = open(&trail, &bytes).unwrap_err();
        assert!(
            matches!(err, ModelError::HeaderTooLarge { header_bytes, .. } if header_bytes == claimed),
            "{err}"
        );
        assert!(err.to_string().contains(&claimed.to_string()), "{err}");
    }
    assert!(matches!(
        seal_rejected(&u64::MAX.to_le_bytes()),
        SealModelError::Model(_)
    ));
}

#[test]
fn header_length_past_end_of_file() {
    let trail = common::Trail::open();
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"a\":");
    let err = open(&trail, &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::HeaderTruncated {
                header_bytes: 1000,
                available: 5
            }
        ),
        "{err}"
    );
}

#[test]
fn garbage_json() {
    let trail = common::Trail::open();
    let headers: [&[u8]; 6] = [
        b"not json at all",
        b"{\"a\": {\"dtype\": \"F32\"",
        b"[1, 2, 3]",
        b"{\"a\": {\"dtype\": \"NOPE\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
        b"{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, \"\xff\": 1}",
        &[b'['; 100_000],
    ];
    for header in headers {
        let err = open(&trail, &framed(header, &[0; 4])).unwrap_err();
        assert!(matches!(err, ModelError::InvalidHeader(_)), "{err}");
        assert!(
            err.to_string().starts_with("invalid safetensors header"),
            "{err}"
        );
    }
    let err = seal_rejected(&framed(b"{{{{", &[]));
    assert!(
        matches!(err, SealModelError::Model(ModelError::InvalidHeader(_))),
        "{err}"
    );
}

#[test]
fn offsets_out_of_range() {
    let trail = common::Trail::open();
    // Offsets past the data that is there: the data section is too short.
    let header = br#"{"a": {"dtype": "U8", "shape": [1000], "data_offsets": [0, 1000]}}"#;
    let err = open(&trail, &framed(header, &[0; 10])).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::DataLengthMismatch {
                expected: 1000,
                found: 10
            }
        ),
        "{err}"
    );
    assert!(matches!(
        seal_rejected(&framed(header, &[0; 10])),
        SealModelError::Model(_)
    ));

    // Offsets near u64::MAX, shape overflow, a gap, an overlap, a size that
    // disagrees with the shape: all refused by the header check.
    let headers: [&[u8]; 5] = [
        br#"{"a": {"dtype": "U8", "shape": [1], "data_offsets": [18446744073709551614, 18446744073709551615]}}"#,
        br#"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}}"#,
        br#"{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [3, 5]}}"#,
        br#"{"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}"#,
        br#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#,
    ];
    for header in headers {
        let err = open(&trail, &framed(header, &[0; 4])).unwrap_err();
        assert!(matches!(err, ModelError::InvalidHeader(_)), "{err}");
    }
}

#[test]
fn trailing_bytes_after_the_data() {
    let trail = common::Trail::open();
    let mut bytes = common::safetensors_bytes(&[("a", &[1; 8])]);
    bytes.extend_from_slice(b"extra");
    let err = open(&trail, &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::DataLengthMismatch {
                expected: 8,
                found: 13
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_data() {
    let mut bytes = common::safetensors_bytes(&[("a", &[1; 8]), ("b", &[2; 8])]);
    bytes.truncate(bytes.len() - 3);
    let err = seal_rejected(&bytes);
    assert!(
        matches!(
            err,
            SealModelError::Model(ModelError::DataLengthMismatch {
                expected: 16,
                found: 13
            })
        ),
        "{err}"
    );
}

#[test]
fn model_without_tensor_bytes() {
    let err = seal_rejected(&framed(b"{}", &[]));
    assert!(
        matches!(err, SealModelError::Model(ModelError::NoTensorData)),
        "{err}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let err = SafetensorsFile::open(Path::new("/no/such/model.safetensors")).unwrap_err();
    assert!(
        err.to_string().contains("/no/such/model.safetensors"),
        "{err}"
    );
}
