//! The GPU's chunk-hash code (`kernels/chunk_sha256.c`), built for the host
//! by build.rs both as C and with its CUDA branch (through
//! `kernels/cuda_source_on_cpu.cpp`), is held here to the NIST SHA-256 test
//! vectors, to the `sha2` crate, and to the host digest in
//! `vram_residency::digest`, bit for bit.

mod common;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};
use vram_residency::digest::{CHUNK_BYTES, chunk_root};

// The host entry points of kernels/chunk_sha256.c, linked into the crate's
// library by build.rs.
unsafe extern "C" {
    fn sealtrail_chunk_bytes() -> u32;
    fn sealtrail_sha256(data: *const u8, len: u64, out: *mut u8);
    fn sealtrail_chunk_leaves_host(shard: *const u8, len: u64, leaves: *mut u8);
    fn sealtrail_chunk_leaves_cuda_source(
        shard: *const u8,
        len: u64,
        threads_per_block: u32,
        leaves: *mut u8,
    );
}

/// Threads per block of the CUDA backend's launch.
const THREADS_PER_BLOCK: u32 = 128;

fn c_sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `data` is valid for `data.len()` bytes and `out` for 32; the C
    // code reads and writes nothing else.
    unsafe { sealtrail_sha256(data.as_ptr(), data.len() as u64, out.as_mut_ptr()) };
    out
}

fn c_leaves(shard: &[u8]) -> Vec<[u8; 32]> {
    let mut leaves = vec![[0u8; 32]; shard.len().div_ceil(CHUNK_BYTES)];
    // SAFETY: `leaves` has room for one 32-byte hash per chunk, which is
    // what the C code writes; it reads `shard.len()` bytes of `shard`.
    unsafe {
        sealtrail_chunk_leaves_host(
            shard.as_ptr(),
            shard.len() as u64,
            leaves.as_mut_ptr().cast(),
        )
    };
    leaves
}

/// The leaves as the kernel's CUDA source computes them, run on the CPU
/// from a 4-byte-aligned copy of `shard`, as a device allocation is.
fn cuda_source_leaves(shard: &[u8]) -> Vec<[u8; 32]> {
    let mut aligned = vec![0u32; shard.len().div_ceil(4)];
    let bytes: &mut [u8] = as_bytes_mut(&mut aligned);
    bytes[..shard.len()].copy_from_slice(shard);
    let mut leaves = vec![[0u8; 32]; shard.len().div_ceil(CHUNK_BYTES)];
    // SAFETY: `aligned` holds `shard.len()` valid bytes and is 4-byte
    // aligned; `leaves` has room for one 32-byte hash per chunk, which is
    // what the kernel writes.
    unsafe {
        sealtrail_chunk_leaves_cuda_source(
            aligned.as_ptr().cast(),
            shard.len() as u64,
            THREADS_PER_BLOCK,
            leaves.as_mut_ptr().cast(),
        )
    };
    leaves
}

/// The bytes of a `u32` buffer.
fn as_bytes_mut(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: any bytes are valid `u8`s, the length covers exactly the
    // words' bytes, and the borrow of `words` outlives the slice.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 4) }
}

/// The RFC 9162 root of leaf hashes, computed from the definition.
fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => Sha256::digest(b"").into(),
        [leaf] => *leaf,
        _ => {
            let split = leaves.len().next_power_of_two() / 2;
            let mut node = vec![0x01];
            node.extend_from_slice(&root_of(&leaves[..split]));
            node.extend_from_slice(&root_of(&leaves[split..]));
            Sha256::digest(&node).into()
        }
    }
}

#[test]
fn the_c_chunk_size_is_the_rust_chunk_size() {
    // SAFETY: takes and touches nothing.
    assert_eq!(unsafe { sealtrail_chunk_bytes() } as usize, CHUNK_BYTES);
}

/// FIPS 180-4 examples and the NIST CAVP short and long messages.
#[test]
fn c_sha256_matches_the_nist_vectors() {
    let vectors: [(&[u8], &str); 4] = [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
        (
            b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
        ),
    ];
    for (message, expected) in vectors {
        assert_eq!(hex::encode(c_sha256(message)), expected, "{message:?}");
    }
    assert_eq!(
        hex::encode(c_sha256(&vec![b'a'; 1_000_000])),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
        "one million 'a'"
    );
}

#[test]
fn c_sha256_matches_sha2_at_every_length_around_the_block_edges() {
    let data = common::pattern(300, 7);
    for len in 0..=data.len() {
        let expected: [u8; 32] = Sha256::digest(&data[..len]).into();
        assert_eq!(c_sha256(&data[..len]), expected, "length {len}");
    }
}

#[test]
fn c_leaves_are_the_rfc_9162_leaf_hashes_of_each_chunk() {
    let shard = common::pattern(3 * CHUNK_BYTES + 100, 11);
    let leaves = c_leaves(&shard);
    assert_eq!(leaves.len(), 4);
    for (leaf, chunk) in leaves.iter().zip(shard.chunks(CHUNK_BYTES)) {
        let mut prefixed = vec![0x00];
        prefixed.extend_from_slice(chunk);
        assert_eq!(*leaf, <[u8; 32]>::from(Sha256::digest(&prefixed)));
    }
}

/// The leaf code reads whole blocks in words and the rest byte by byte;
/// every split between the two, and both sides of the padding's block
/// edge, for a last chunk of each length near a block boundary.
#[test]
fn c_leaves_are_right_for_every_last_chunk_length_near_a_block_edge() {
    let shard = common::pattern(CHUNK_BYTES + 200, 5);
    let lengths = (0..=200).chain(CHUNK_BYTES - 200..CHUNK_BYTES);
    for tail in lengths {
        let chunk = &shard[CHUNK_BYTES - tail.min(CHUNK_BYTES)..][..tail];
        let mut prefixed = vec![0x00];
        prefixed.extend_from_slice(chunk);
        let expected = <[u8; 32]>::from(Sha256::digest(&prefixed));
        let expected = (tail > 0).then_some(expected);
        // A one-chunk shard of this length, and the same bytes as the
        // last chunk after a whole one, through the host build and through
        // the CUDA source.
        let mut two = shard[..CHUNK_BYTES].to_vec();
        two.extend_from_slice(chunk);
        for leaves in [c_leaves, cuda_source_leaves] {
            assert_eq!(leaves(chunk).first().copied(), expected, "{tail}");
            assert_eq!(leaves(&two).get(1).copied(), expected, "{tail}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The root from the C leaves equals the host digest for random shards
    /// of every shape: shorter than a chunk, exact multiples, ragged ends.
    #[test]
    fn the_c_leaves_give_the_host_digest(
        chunks in 0usize..9,
        extra in prop_oneof![Just(0usize), 1usize..CHUNK_BYTES],
        seed in any::<u64>(),
    ) {
        let shard = common::pattern(chunks * CHUNK_BYTES + extra, seed);
        let leaves = c_leaves(&shard);
        prop_assert_eq!(root_of(&leaves), chunk_root(&shard).0);
        prop_assert_eq!(cuda_source_leaves(&shard), leaves);
    }
}
