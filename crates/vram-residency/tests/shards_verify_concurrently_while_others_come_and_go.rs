//! `verify_sealed` takes `&self`: threads verify their own shards at the
//! same time while another thread seals and frees shards of its own, and
//! every verification of a resident shard passes while every stale handle
//! stays refused.

mod common;

use std::sync::Barrier;

use vram_residency::{HandleError, ShardSpec, VerifyError};

#[test]
fn shards_verify_concurrently_while_others_come_and_go() {
    let trail = common::Trail::open();
    let manager = trail.manager(64 << 20);
    let resident: Vec<_> = (0..4u32)
        .map(|i| {
            let spec = ShardSpec::new(format!("r#{i}"), "r", i, 4);
            manager.seal_shard(&spec, &vec![i as u8; 100_000]).unwrap()
        })
        .collect();
    let start = Barrier::new(resident.len() + 1);

    std::thread::scope(|s| {
        for shard in &resident {
            let (manager, start) = (&manager, &start);
            s.spawn(move || {
                start.wait();
                for _ in 0..20 {
                    manager.verify_sealed(shard).unwrap();
                }
            });
        }
        s.spawn(|| {
            start.wait();
            for round in 0..20u32 {
                let spec = ShardSpec::new(format!("churn#{round}"), "churn", 0, 1);
                let shard = manager.seal_shard(&spec, &[round as u8; 30_000]).unwrap();
                let stale = shard.clone();
                manager.deallocate(shard).unwrap();
                // A freed slot may be reused at once; the old handle must
                // never reach its new occupant.
                assert!(matches!(
                    manager.verify_sealed(&stale),
                    Err(VerifyError::Handle {
                        source: HandleError::Stale,
                        ..
                    })
                ));
            }
        });
    });
    assert_eq!(manager.resident_shards(), 4);
}
