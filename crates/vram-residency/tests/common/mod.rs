//! Shared fixtures for the integration tests: a real audit logger writing to
//! a temporary directory, read back through `audit_logging::query`, and small
//! safetensors files built with the `safetensors` crate.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use audit_logging::{AuditEvent, AuditKey, AuditLogger, LoggerConfig};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use tempfile::TempDir;
use vram_residency::{HostBackend, ManagerConfig, SealKey, VramManager};

/// An audit trail in a temporary directory.
pub struct Trail {
    pub dir: TempDir,
    pub logger: Arc<AuditLogger>,
}

impl Trail {
    pub fn open() -> Trail {
        let dir = tempfile::tempdir().unwrap();
        let config = LoggerConfig::new(dir.path().join("audit"));
        let logger = AuditLogger::open(config, AuditKey::generate().unwrap()).unwrap();
        Trail {
            dir,
            logger: Arc::new(logger),
        }
    }

    /// The VRAM and model events written so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.logger.flush().unwrap();
        audit_logging::query::read_events(&self.dir.path().join("audit"))
            .unwrap()
            .into_iter()
            .filter(|e| {
                let ty = e.event_type();
                ty.starts_with("vram.") || ty.starts_with("model.")
            })
            .collect()
    }

    /// The types of [`events`](Self::events).
    pub fn types(&self) -> Vec<&'static str> {
        self.events().iter().map(AuditEvent::event_type).collect()
    }

    /// A manager on a host backend of `capacity` bytes recording here.
    pub fn manager(&self, capacity: u64) -> VramManager<HostBackend> {
        self.manager_with(capacity, ManagerConfig::new("worker-test"))
    }

    pub fn manager_with(&self, capacity: u64, config: ManagerConfig) -> VramManager<HostBackend> {
        VramManager::new(
            HostBackend::with_capacity(capacity),
            SealKey::generate().unwrap(),
            Arc::clone(&self.logger),
            config,
        )
    }
}

/// Serializes `U8` tensors with the given names and contents; tensors are
/// stored in name order.
pub fn safetensors_bytes(tensors: &[(&str, &[u8])]) -> Vec<u8> {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, data)| {
            (
                *name,
                TensorView::new(Dtype::U8, vec![data.len()], data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// Writes `bytes` to `name` in `dir`.
pub fn write_file(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The real all-MiniLM-L6-v2 model: `$SEALTRAIL_TEST_MODEL`, or the copy in
/// the `shared/` folder beside the repository. `None` (the test skips, and
/// says so) when it is absent, unless `SEALTRAIL_REQUIRE_MODEL=1`, as in CI.
pub fn real_model() -> Option<PathBuf> {
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

/// `len` bytes with no structure, the same for the same `seed`
/// (xorshift64), for tests that compare digests of arbitrary data.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
