//! A seal whose `CancelFlag` is raised stops at its next upload piece,
//! deallocates every shard of the model it had sealed or begun, records no
//! rejection, and fails with `SealModelError::Cancelled`; a sharded
//! checkpoint is released across all its files.

mod common;

use vram_residency::{
    CancelFlag, SealModelError, SealModelOptions, SealProgress, UPLOAD_CHUNK_BYTES,
};

/// Three shards: the middle one spans several upload pieces.
fn fixture(trail: &common::Trail) -> std::path::PathBuf {
    let big = common::pattern(3 * UPLOAD_CHUNK_BYTES + 17, 3);
    let bytes = common::safetensors_bytes(&[("a", &[1; 64]), ("b", &big), ("c", &[3; 64])]);
    common::write_file(&trail.dir, "model.safetensors", &bytes)
}

fn options(cancel: &CancelFlag) -> SealModelOptions {
    SealModelOptions::new("m")
        .with_max_shard_bytes(1024)
        .with_cancel(cancel.clone())
}

#[test]
fn a_flag_raised_mid_shard_stops_the_seal_and_releases_every_shard() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 30);
    let path = fixture(&trail);
    let cancel = CancelFlag::new();
    let mut pieces = 0;
    let result = manager.seal_model(&path, &options(&cancel), &mut |p| {
        // Raised by "a signal" after the first piece of the big shard.
        if let SealProgress::ShardUploaded { index: 1, .. } = p {
            pieces += 1;
            cancel.raise();
        }
    });
    assert!(
        matches!(result, Err(SealModelError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(pieces, 1, "stopped at the next piece");
    assert_eq!(
        (manager.backend().allocation_count(), manager.used_bytes()),
        (0, 0)
    );
    let types = trail.types();
    assert!(!types.contains(&"model.rejected"), "{types:?}");
    assert!(!types.contains(&"model.sealed"), "{types:?}");
    let allocated = types.iter().filter(|t| **t == "vram.allocated").count();
    let freed = types.iter().filter(|t| **t == "vram.deallocated").count();
    assert_eq!((allocated, freed), (2, 2), "{types:?}");
}

#[test]
fn a_flag_raised_before_the_seal_uploads_nothing() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 30);
    let path = fixture(&trail);
    let cancel = CancelFlag::new();
    cancel.raise();
    let result = manager.seal_model(&path, &options(&cancel), &mut |_| {});
    assert!(
        matches!(result, Err(SealModelError::Cancelled)),
        "{result:?}"
    );
    assert_eq!(manager.backend().allocation_count(), 0);
    assert!(!trail.types().contains(&"vram.allocated"));
}

#[test]
fn a_flag_never_raised_changes_nothing() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 30);
    let path = fixture(&trail);
    let cancel = CancelFlag::new();
    let model = manager
        .seal_model(&path, &options(&cancel), &mut |_| {})
        .unwrap();
    assert_eq!(model.shards.len(), 3);
    assert_eq!(cancel, cancel.clone());
    assert_ne!(cancel, CancelFlag::new());
}
