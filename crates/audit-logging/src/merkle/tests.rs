use std::convert::Infallible;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use super::*;

// ----- oracles written straight from the RFC 9162 definitions --------------

/// The largest power of two below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]), section 2.1.1, by recursion.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => EMPTY_ROOT,
        1 => d[0],
        n => {
            let k = split(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// PATH(m, D[n]), section 2.1.3.1, by recursion.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split(d.len());
    let (mut proof, sibling) = if m < k {
        (path(m, &d[..k]), mth(&d[k..]))
    } else {
        (path(m - k, &d[k..]), mth(&d[..k]))
    };
    proof.push(sibling);
    proof
}

/// SUBPROOF(m, D[n], b), section 2.1.4.1, by recursion.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split(n);
    let (mut proof, sibling) = if m <= k {
        (subproof(m, &d[..k], b), mth(&d[k..]))
    } else {
        (subproof(m - k, &d[k..], false), mth(&d[..k]))
    };
    proof.push(sibling);
    proof
}

/// The steps the RFC 9162 2.1.3.2 loop takes, without hashing: `true` where
/// the proof hash goes on the left. The size enters verification only
/// through this shape.
fn inclusion_shape(index: u64, size: u64) -> Option<Vec<bool>> {
    if index >= size {
        return None;
    }
    Some(walk(index, size - 1))
}

/// The shape of the RFC 9162 2.1.4.2 loop: whether the old root is
/// prepended, then the steps (`true` where both roots are updated).
#[derive(Debug, PartialEq, Eq)]
enum ConsistencyShape {
    Equal,
    Steps { prepend: bool, steps: Vec<bool> },
}

fn consistency_shape(old: u64, new: u64) -> Option<ConsistencyShape> {
    if old > new || (old == 0 && new != 0) {
        return None;
    }
    if old == new {
        return Some(ConsistencyShape::Equal);
    }
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    Some(ConsistencyShape::Steps {
        prepend: old.is_power_of_two(),
        steps: walk(fn_, sn),
    })
}

fn walk(mut fn_: u64, mut sn: u64) -> Vec<bool> {
    let mut steps = Vec::new();
    while sn != 0 {
        if fn_ & 1 == 1 || fn_ == sn {
            steps.push(true);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            steps.push(false);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    steps
}

/// Leaves that all differ, so no two subtrees share a hash.
fn distinct_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut bytes = hash.0;
    bytes[bit / 8] ^= 1 << (bit % 8);
    Hash(bytes)
}

// ----- hashing --------------------------------------------------------------

#[test]
fn empty_root_is_sha256_of_nothing() {
    assert_eq!(EMPTY_ROOT.0, <[u8; 32]>::from(Sha256::digest(b"")));
    assert_eq!(CompactRange::new().root(), EMPTY_ROOT);
    assert_eq!(tree_root(0, &Vec::new()).unwrap(), EMPTY_ROOT);
}

#[test]
fn leaf_and_node_hashes_have_the_documented_byte_layout() {
    let data = b"record bytes";
    let mut leaf_input = vec![0x00];
    leaf_input.extend_from_slice(data);
    assert_eq!(
        leaf_hash(data).0,
        <[u8; 32]>::from(Sha256::digest(&leaf_input))
    );

    let (left, right) = (leaf_hash(b"l"), leaf_hash(b"r"));
    let mut node_input = vec![0x01];
    node_input.extend_from_slice(&left.0);
    node_input.extend_from_slice(&right.0);
    assert_eq!(node_input.len(), 65);
    assert_eq!(
        node_hash(&left, &right).0,
        <[u8; 32]>::from(Sha256::digest(&node_input))
    );
    assert_eq!((LEAF_PREFIX, NODE_PREFIX), (0x00, 0x01));
}

#[test]
fn a_leaf_never_hashes_like_the_node_made_of_its_bytes() {
    let (left, right) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let mut concatenated = left.0.to_vec();
    concatenated.extend_from_slice(&right.0);
    assert_ne!(leaf_hash(&concatenated), node_hash(&left, &right));
}

#[test]
fn hash_reads_and_writes_lowercase_hex() {
    let hash = leaf_hash(b"x");
    let hex = hash.to_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(hex.parse::<Hash>().unwrap(), hash);
    assert_eq!(format!("{hash}"), hex);
    assert_eq!(format!("{hash:?}"), format!("Hash({hex})"));
    assert_eq!(serde_json::to_string(&hash).unwrap(), format!("\"{hex}\""));
    assert_eq!(
        serde_json::from_str::<Hash>(&format!("\"{hex}\"")).unwrap(),
        hash
    );
    assert!(hex[..62].parse::<Hash>().is_err());
    assert!("zz".repeat(32).parse::<Hash>().is_err());
}

// ----- compact range --------------------------------------------------------

#[test]
fn compact_range_root_is_the_tree_hash_at_every_size() {
    let leaves = distinct_leaves(130);
    let mut range = CompactRange::new();
    for (n, leaf) in leaves.iter().enumerate() {
        range.append(*leaf).unwrap();
        let size = n as u64 + 1;
        assert_eq!(range.size(), size);
        assert_eq!(range.hashes().len(), size.count_ones() as usize);
        assert_eq!(range.root(), mth(&leaves[..=n]), "size {size}");
    }
}

#[test]
fn compact_range_holds_the_perfect_subtrees_largest_first() {
    let leaves = distinct_leaves(45);
    let mut range = CompactRange::new();
    for leaf in &leaves {
        range.append(*leaf).unwrap();
    }
    // 45 = 32 + 8 + 4 + 1.
    let expected = [
        mth(&leaves[..32]),
        mth(&leaves[32..40]),
        mth(&leaves[40..44]),
        leaves[44],
    ];
    assert_eq!(range.hashes(), expected);
}

#[test]
fn compact_range_survives_a_round_trip_and_resumes() {
    let leaves = distinct_leaves(77);
    let mut whole = CompactRange::new();
    let mut resumed = CompactRange::new();
    for (n, leaf) in leaves.iter().enumerate() {
        whole.append(*leaf).unwrap();
        if n % 10 == 3 {
            let saved = serde_json::to_string(&resumed).unwrap();
            resumed = serde_json::from_str(&saved).unwrap();
        }
        resumed.append(*leaf).unwrap();
    }
    assert_eq!(resumed, whole);
    assert_eq!(resumed.root(), mth(&leaves));
}

#[test]
fn compact_range_refuses_a_hash_count_that_does_not_fit_its_size() {
    let h = leaf_hash(b"");
    let err = CompactRange::from_parts(7, vec![h, h]).unwrap_err();
    assert_eq!(
        err,
        InvalidCompactRange {
            size: 7,
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "a tree of 7 leaves has 3 perfect subtrees, but 2 hashes were given"
    );
    let json = format!(r#"{{"size":2,"hashes":["{h}","{h}"]}}"#);
    assert!(serde_json::from_str::<CompactRange>(&json).is_err());
    let json = format!(r#"{{"size":1,"hashes":["{h}"],"extra":1}}"#);
    assert!(serde_json::from_str::<CompactRange>(&json).is_err());
    let json = format!(r#"{{"size":1,"hashes":["{h}"]}}"#);
    assert_eq!(
        serde_json::from_str::<CompactRange>(&json).unwrap().root(),
        h
    );
}

#[test]
fn a_full_compact_range_refuses_to_grow_and_stays_as_it_was() {
    let h = leaf_hash(b"");
    let mut range = CompactRange::from_parts(u64::MAX, vec![h; MAX_FRONTIER_HASHES]).unwrap();
    let before = range.clone();
    assert_eq!(range.append(h), Err(TreeFull));
    assert_eq!(range, before);
    assert!(TreeFull.to_string().contains("18446744073709551615"));
}

// ----- generation -----------------------------------------------------------

#[test]
fn generated_proofs_are_the_rfc_recursion() {
    for n in 1..=40u64 {
        let leaves = distinct_leaves(n);
        assert_eq!(tree_root(n, &leaves).unwrap(), mth(&leaves));
        for i in 0..n {
            let proof = inclusion_proof(i, n, &leaves).unwrap();
            assert_eq!(proof, path(i as usize, &leaves), "PATH({i}, D[{n}])");
        }
        for m in 1..n {
            let proof = consistency_proof(m, n, &leaves).unwrap();
            let expected = subproof(m as usize, &leaves, true);
            assert_eq!(proof, expected, "PROOF({m}, D[{n}])");
        }
    }
}

#[test]
fn proof_lengths_agree_with_generation_and_with_the_verifier_loop() {
    for n in 1..=70u64 {
        let leaves = distinct_leaves(n);
        for i in 0..n {
            let len = inclusion_proof_len(i, n).unwrap();
            assert_eq!(len, inclusion_proof(i, n, &leaves).unwrap().len());
            assert_eq!(len, inclusion_shape(i, n).unwrap().len());
        }
        for m in 1..=n {
            let len = consistency_proof_len(m, n).unwrap();
            assert_eq!(len, consistency_proof(m, n, &leaves).unwrap().len());
        }
    }
    assert_eq!(inclusion_proof_len(0, 0), None);
    assert_eq!(inclusion_proof_len(8, 8), None);
    assert_eq!(consistency_proof_len(0, 0), Some(0));
    assert_eq!(consistency_proof_len(0, 1), None);
    assert_eq!(consistency_proof_len(3, 2), None);
}

#[test]
fn leaves_are_read_once_each_in_increasing_order() {
    let leaves = distinct_leaves(1000);
    for (what, old_or_index, size) in [("inclusion", 617, 1000), ("consistency", 617, 1000)] {
        let mut reads = Vec::new();
        let source = from_fn(|i| {
            reads.push(i);
            Ok::<_, Infallible>(leaves[i as usize])
        });
        if what == "inclusion" {
            inclusion_proof(old_or_index, size, source).unwrap();
        } else {
            consistency_proof(old_or_index, size, source).unwrap();
        }
        assert!(reads.windows(2).all(|w| w[0] < w[1]), "{what}: {reads:?}");
        assert!(
            (reads.len() as u64) <= size,
            "{what}: {} reads",
            reads.len()
        );
    }
}

#[test]
fn a_lent_source_can_be_used_again() {
    let leaves = distinct_leaves(9);
    let mut calls = 0;
    let mut source = from_fn(|i| {
        calls += 1;
        Ok::<_, Infallible>(leaves[i as usize])
    });
    let first = inclusion_proof(4, 9, &mut source).unwrap();
    let second = inclusion_proof(4, 9, &mut source).unwrap();
    assert_eq!(first, second);
    assert_eq!(calls, 16);
}

#[test]
fn a_source_error_names_the_leaf_and_keeps_its_cause() {
    let leaves = distinct_leaves(4);
    let err = inclusion_proof(0, 8, &leaves).unwrap_err();
    assert_eq!(
        err,
        ProofError::Leaf {
            index: 4,
            source: LeafOutOfRange { index: 4, len: 4 }
        }
    );
    assert_eq!(err.to_string(), "could not read the hash of leaf 4");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(
        cause,
        "leaf 4 was asked for, but only 4 leaf hashes are held"
    );
}

#[test]
fn generation_refuses_what_has_no_proof() {
    let leaves = distinct_leaves(8);
    assert_eq!(
        inclusion_proof(8, 8, &leaves).unwrap_err().to_string(),
        "leaf index 8 is not below the tree size 8"
    );
    assert!(inclusion_proof(0, 0, &leaves).is_err());
    assert_eq!(
        consistency_proof(5, 4, &leaves).unwrap_err().to_string(),
        "old tree size 5 is larger than the new tree size 4"
    );
    assert_eq!(
        consistency_proof(0, 4, &leaves).unwrap_err().to_string(),
        "no consistency proof exists from the empty tree to 4 leaves"
    );
    assert_eq!(
        consistency_proof(0, 0, &leaves).unwrap(),
        Vec::<Hash>::new()
    );
    assert_eq!(
        consistency_proof(6, 6, &leaves).unwrap(),
        Vec::<Hash>::new()
    );
}

// ----- verification ---------------------------------------------------------

#[test]
fn inclusion_errors_say_what_was_found_and_what_was_wanted() {
    let leaves = distinct_leaves(8);
    let root = mth(&leaves);
    let mut proof = inclusion_proof(5, 8, &leaves).unwrap();

    let err = verify_inclusion(&leaves[5], 8, 8, &proof, &root).unwrap_err();
    assert_eq!(err.to_string(), "leaf index 8 is not below the tree size 8");

    let other = leaves[4];
    let err = verify_inclusion(&other, 5, 8, &proof, &root).unwrap_err();
    let InclusionError::RootMismatch { computed, expected } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*expected, root);
    assert_eq!(
        err.to_string(),
        format!("computed root {computed}, expected {root}")
    );

    // A wrong length is reported before any hashing, even with a wrong root.
    proof.push(root);
    let err = verify_inclusion(&leaves[5], 5, 8, &proof, &EMPTY_ROOT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inclusion proof for leaf 5 of 8 has 4 hashes, expected 3"
    );
}

#[test]
fn consistency_errors_say_what_was_found_and_what_was_wanted() {
    let leaves = distinct_leaves(8);
    let (old, new) = (mth(&leaves[..6]), mth(&leaves));
    let proof = consistency_proof(6, 8, &leaves).unwrap();
    assert_eq!(verify_consistency(6, 8, &old, &new, &proof), Ok(()));

    let message = |old_size, new_size, old_root, new_root, proof: &[Hash]| {
        verify_consistency(old_size, new_size, old_root, new_root, proof)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message(7, 6, &old, &new, &proof),
        "old tree size 7 is larger than the new tree size 6"
    );
    assert_eq!(
        message(0, 8, &EMPTY_ROOT, &new, &[]),
        "old tree size is 0 and new tree size is 8; a proof needs an old size of 1 or more"
    );
    assert_eq!(
        message(6, 8, &old, &new, &proof[..2]),
        "consistency proof from size 6 to 8 has 2 hashes, expected 3"
    );
    assert_eq!(
        message(8, 8, &new, &new, &proof),
        "consistency proof from size 8 to 8 has 3 hashes, expected 0"
    );
    assert_eq!(
        message(8, 8, &old, &new, &[]),
        format!("trees of equal size 8 have different roots: old {old}, new {new}")
    );
    assert_eq!(
        message(6, 8, &new, &new, &proof),
        format!("computed old root {old}, expected {new}")
    );
    assert_eq!(
        message(6, 8, &old, &old, &proof),
        format!("computed new root {new}, expected {old}")
    );
}

#[test]
fn equal_sizes_are_consistent_with_an_empty_proof_and_equal_roots() {
    assert_eq!(
        verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]),
        Ok(())
    );
    let root = mth(&distinct_leaves(5));
    assert_eq!(verify_consistency(5, 5, &root, &root, &[]), Ok(()));
}

#[test]
fn a_root_does_not_encode_its_size() {
    // Leaf 0 of 5 and leaf 0 of 7 take the same steps, so a proof for one
    // passes for the other against the same root (see the module docs).
    assert_eq!(inclusion_shape(0, 5), inclusion_shape(0, 7));
    let leaves = distinct_leaves(5);
    let proof = inclusion_proof(0, 5, &leaves).unwrap();
    let root = mth(&leaves);
    assert_eq!(verify_inclusion(&leaves[0], 0, 7, &proof, &root), Ok(()));
}

// ----- properties -----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every inclusion proof verifies; a flipped bit in a proof hash, the
    /// leaf, the root or the index makes it fail; a flipped bit in the size
    /// makes it fail exactly when the flipped size gives the proof another
    /// shape.
    #[test]
    fn inclusion_proofs_verify_and_no_single_bit_flip_passes(
        size in 1u64..=300,
        index_seed in any::<u64>(),
        bits in prop::collection::vec(0usize..256, 12),
    ) {
        let index = index_seed % size;
        let leaves = distinct_leaves(size);
        let leaf = leaves[index as usize];
        let root = tree_root(size, &leaves).unwrap();
        let proof = inclusion_proof(index, size, &leaves).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

        for (k, bit) in bits.iter().enumerate().take(proof.len()) {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], *bit);
            prop_assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
        }
        let (leaf_bit, root_bit) = (bits[10], bits[11]);
        prop_assert!(verify_inclusion(&flip(&leaf, leaf_bit), index, size, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip(&root, root_bit)).is_err());

        for bit in 0..64 {
            let other = index ^ (1 << bit);
            prop_assert!(
                verify_inclusion(&leaf, other, size, &proof, &root).is_err(),
                "index {} passed for {}", other, index
            );
            let other = size ^ (1 << bit);
            let same_shape = inclusion_shape(index, other) == inclusion_shape(index, size);
            let passed = verify_inclusion(&leaf, index, other, &proof, &root).is_ok();
            prop_assert_eq!(passed, same_shape, "size {} for {}", other, size);
        }
    }

    /// Every consistency proof verifies; a flipped bit in a proof hash or
    /// either root makes it fail; a flipped bit in either size makes it fail
    /// exactly when the flipped sizes give the proof another shape.
    #[test]
    fn consistency_proofs_verify_and_no_single_bit_flip_passes(
        new_size in 1u64..=300,
        old_seed in any::<u64>(),
        bits in prop::collection::vec(0usize..256, 12),
    ) {
        let old_size = old_seed % new_size + 1;
        let leaves = distinct_leaves(new_size);
        let old_root = tree_root(old_size, &leaves).unwrap();
        let new_root = tree_root(new_size, &leaves).unwrap();
        let proof = consistency_proof(old_size, new_size, &leaves).unwrap();
        let verify = |old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]| {
            verify_consistency(old, new, old_root, new_root, proof)
        };
        prop_assert_eq!(verify(old_size, new_size, &old_root, &new_root, &proof), Ok(()));

        for (k, bit) in bits.iter().enumerate().take(proof.len()) {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], *bit);
            prop_assert!(verify(old_size, new_size, &old_root, &new_root, &bad).is_err());
        }
        let (old_bit, new_bit) = (bits[10], bits[11]);
        let bad_old = flip(&old_root, old_bit);
        let bad_new = flip(&new_root, new_bit);
        prop_assert!(verify(old_size, new_size, &bad_old, &new_root, &proof).is_err());
        prop_assert!(verify(old_size, new_size, &old_root, &bad_new, &proof).is_err());

        let shape = consistency_shape(old_size, new_size);
        for bit in 0..64 {
            let other = old_size ^ (1 << bit);
            let same_shape = consistency_shape(other, new_size) == shape;
            let passed = verify(other, new_size, &old_root, &new_root, &proof).is_ok();
            prop_assert_eq!(passed, same_shape, "old size {} for {}", other, old_size);

            let other = new_size ^ (1 << bit);
            let same_shape = consistency_shape(old_size, other) == shape;
            let passed = verify(old_size, other, &old_root, &new_root, &proof).is_ok();
            prop_assert_eq!(passed, same_shape, "new size {} for {}", other, new_size);
        }
    }

    /// The length formulas agree with the RFC verification loop at any size,
    /// and neither verifier panics on any input.
    #[test]
    fn lengths_hold_and_verifiers_never_panic_at_any_size(
        a in any::<u64>(),
        b in any::<u64>(),
        junk in prop::collection::vec(any::<[u8; 32]>(), 0..70),
    ) {
        let junk: Vec<Hash> = junk.into_iter().map(Hash).collect();
        let (low, high) = (a.min(b), a.max(b));
        prop_assert_eq!(
            inclusion_proof_len(low, high),
            inclusion_shape(low, high).map(|s| s.len())
        );
        let expected = match consistency_shape(low, high) {
            None => None,
            Some(ConsistencyShape::Equal) => Some(0),
            Some(ConsistencyShape::Steps { prepend, steps }) => {
                Some(steps.len() + 1 - usize::from(prepend))
            }
        };
        prop_assert_eq!(consistency_proof_len(low, high), expected);

        let root = junk.first().copied().unwrap_or(EMPTY_ROOT);
        let _ = verify_inclusion(&root, a, b, &junk, &root);
        let _ = verify_consistency(a, b, &root, &root, &junk);
        let _ = verify_consistency(low, high, &root, &root, &junk);
        if let Some(len) = inclusion_proof_len(low, high) {
            let sized: Vec<Hash> = junk.iter().copied().cycle().take(len).collect();
            if sized.len() == len {
                prop_assert!(verify_inclusion(&root, low, high, &sized, &root).is_err() || len == 0);
            }
        }
    }
}
