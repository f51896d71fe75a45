//! Arbitrary bytes through the readers of checkpoint material a third party
//! hands over: proof files (`sealtrail verify --proof`) and anchors
//! (`sealtrail verify --anchor`). Neither may panic or buffer without bound,
//! and garbage must never check out.
//!
//! Run with `cargo fuzz run proof_checker`.

#![no_main]

use std::sync::OnceLock;

use audit_logging::checkpoint::{CheckpointSigner, KeyName, NoteVerifier};
use audit_logging::logtree::{Anchor, check_proof};
use libfuzzer_sys::fuzz_target;

/// A verifier key whose private half nobody has: no input can carry a valid
/// signature by it, so nothing may ever verify.
fn trusted() -> &'static NoteVerifier {
    static KEY: OnceLock<NoteVerifier> = OnceLock::new();
    KEY.get_or_init(|| {
        let name = KeyName::new("sealtrail/0123456789abcdef").expect("a valid key name");
        CheckpointSigner::generate(name)
            .expect("the OS random source")
            .verifier()
    })
}

fuzz_target!(|data: &[u8]| {
    assert!(check_proof(data, trusted()).is_err());
    assert!(Anchor::open(data, "0123456789abcdef", trusted()).is_err());
});
