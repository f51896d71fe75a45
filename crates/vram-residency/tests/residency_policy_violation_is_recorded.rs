//! With `require_device_residency` set, sealing on the host simulation is
//! refused with a clear error and recorded as `vram.policy_violation`, both
//! for a single shard and for a whole model; nothing is allocated.

mod common;

use audit_logging::{AuditEvent, Severity};
use vram_residency::{ManagerConfig, SealError, SealModelError, SealModelOptions, ShardSpec};

fn strict(trail: &common::Trail) -> vram_residency::VramManager<vram_residency::HostBackend> {
    let config = ManagerConfig::new("worker-strict").with_device_residency_required(true);
    trail.manager_with(1 << 20, config)
}

#[test]
fn residency_policy_refuses_a_shard_on_the_simulation() {
    let trail = common::Trail::open();
    let manager = strict(&trail);
    let err = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealError::ResidencyPolicy {
                backend: "host-simulation"
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("simulation"), "{err}");
    assert_eq!(manager.backend().allocation_count(), 0);

    match trail.events().as_slice() {
        [
            AuditEvent::PolicyViolation {
                policy,
                violation,
                shard_id,
                severity,
                worker_id,
                ..
            },
        ] => {
            assert_eq!(policy.as_str(), vram_residency::policy::DEVICE_RESIDENCY);
            assert!(
                violation.as_str().contains("host-simulation"),
                "{violation}"
            );
            assert_eq!(shard_id.as_ref().map(|s| s.as_str()), Some("m#0"));
            assert_eq!(*severity, Severity::High);
            assert_eq!(worker_id.as_str(), "worker-strict");
        }
        other => panic!("expected one vram.policy_violation, got {other:?}"),
    }
}

#[test]
fn residency_policy_refuses_a_model_on_the_simulation() {
    let trail = common::Trail::open();
    let manager = strict(&trail);
    let bytes = common::safetensors_bytes(&[("a", &[1; 10]), ("b", &[2; 10])]);
    let path = common::write_file(&trail.dir, "m.safetensors", &bytes);
    let options = SealModelOptions::new("m").with_max_shard_bytes(10);

    let err = manager
        .seal_model(&path, &options, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealModelError::Shard {
                index: 0,
                source: SealError::ResidencyPolicy { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(trail.types(), ["vram.policy_violation"]);
    assert_eq!(manager.backend().allocation_count(), 0);
}

#[test]
fn without_the_policy_the_simulation_seals_and_says_so() {
    let trail = common::Trail::open();
    let manager = trail.manager(1 << 20);
    let shard = manager
        .seal_shard(&ShardSpec::new("m#0", "m", 0, 1), b"abc")
        .unwrap();
    assert!(shard.device.is_simulated());
    assert!(shard.device.to_string().contains("SIMULATED"));
    assert!(manager.backend_info().to_string().contains("SIMULATED"));
}
