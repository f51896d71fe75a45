//! Arbitrary bytes as an OpenSSF model signature bundle: checking it with
//! a real signer key must refuse anything that is not a bundle that key
//! signed with an error, never a panic. Start from the real bundle in
//! `fuzz/seeds/model_signature` so the fuzzer reaches the DSSE envelope,
//! the key hint, base64 and DER decoding and the signature check.
//!
//! Run with `cargo fuzz run model_signature fuzz/seeds/model_signature`.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vram_residency::provenance::{ModelSignature, SignerKey};

const SIGNER: &str =
    include_str!("../../crates/vram-residency/tests/data/model-signing/signer.pub.pem");

fuzz_target!(|data: &[u8]| {
    static KEY: OnceLock<SignerKey> = OnceLock::new();
    let key = KEY.get_or_init(|| SignerKey::from_pem(SIGNER).expect("fixture key"));
    let signature = ModelSignature::from_bytes(data.to_vec(), PathBuf::from("fuzz.sig"));
    if let Ok(signed) = signature.verify(key) {
        // Only the fixture's own statement can verify.
        assert_eq!(signed.model_name, "model");
    }
    let _ = SignerKey::from_pem(&String::from_utf8_lossy(data));
});
