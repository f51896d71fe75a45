//! `kill -9` at random moments loses nothing that was acknowledged.
//!
//! The parent test runs the logger in a child process — this test binary
//! itself, re-executed with `--ignored --exact` on [`crash_child`] and
//! [`CHILD_DIR_VAR`] set — that emits durable events with unique tags and
//! prints each tag on stdout only after its `emit_durable_sync` returned
//! `Ok`; in some rounds it also emits bursts of large events nobody waits
//! for, which may be lost in a kill but must never be duplicated. The
//! parent kills it with SIGKILL after a random number of
//! acknowledgements and a random delay (sometimes while it is still
//! opening the trail), starts it again, and so on for [`DEFAULT_ROUNDS`]
//! rounds. Then it checks that every acknowledged tag is in the trail
//! exactly once, that no tag is there twice, and that the whole trail, its
//! signed checkpoints included, verifies: restarts and torn tails are not
//! tampering.
//!
//! The random choices come from a seed, [`SEED_VAR`] or a fixed default,
//! printed when the test fails so that a failure can be replayed.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use audit_logging::checkpoint::{CheckpointSigner, KeyName};
use audit_logging::logtree::{CheckpointOptions, origin_for, verify_dir_with_checkpoints};
use audit_logging::{AuditLogger, LoggerConfig};
use common::{key, tag_counts, tagged};
use proptest::prelude::RngCore as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Set in the child: the audit directory to write to.
const CHILD_DIR_VAR: &str = "SEALTRAIL_CRASH_CHILD_DIR";
/// Set in the child: the checkpoint signer key.
const CHILD_SIGNER_VAR: &str = "SEALTRAIL_CRASH_CHILD_SIGNER";
/// Set in the child: the prefix of its tags, unique per round.
const CHILD_ROUND_VAR: &str = "SEALTRAIL_CRASH_CHILD_ROUND";
/// Set in the child: how many large events that nobody waits for to emit
/// before each durable one, so that writes span several pages and a kill
/// can cut one short (a torn tail).
const CHILD_BURST_VAR: &str = "SEALTRAIL_CRASH_CHILD_BURST";
/// Replays a run: the seed of its random choices.
const SEED_VAR: &str = "SEALTRAIL_CRASH_SEED";
/// Overrides the number of kills (never fewer than [`DEFAULT_ROUNDS`]).
const ROUNDS_VAR: &str = "SEALTRAIL_CRASH_ROUNDS";

const DEFAULT_SEED: u64 = 0x5ea1_7a11;
const DEFAULT_ROUNDS: u32 = 200;

/// Most acknowledgements the parent waits for before it kills.
const MAX_ACKS_BEFORE_KILL: u64 = 12;
/// Longest extra delay before the kill, so it lands anywhere in a write,
/// an fsync, a rotation, a key handover or a checkpoint.
const MAX_DELAY_MICROS: u64 = 3000;
/// Large events in a burst: about 8 KiB of writes, two pages or more.
const BURST: u64 = 4;
/// How long the parent waits for one acknowledgement before it decides the
/// child is stuck.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The child's side: not a test on its own, but the entry point the parent
/// re-executes (ignored, so a plain test run neither runs nor counts it).
#[test]
#[ignore = "the child process of the SIGKILL crash test, started by it"]
fn crash_child() {
    let dir = std::env::var_os(CHILD_DIR_VAR)
        .expect("started by the crash test, which names the audit directory");
    let signer = std::env::var(CHILD_SIGNER_VAR).unwrap();
    let round = std::env::var(CHILD_ROUND_VAR).unwrap();
    let burst: u64 = std::env::var(CHILD_BURST_VAR).unwrap().parse().unwrap();
    let filler = "f".repeat(1800);
    let logger = AuditLogger::open(config(Path::new(&dir), &signer), key()).unwrap();
    for i in 0.. {
        for j in 0..burst {
            // Not acknowledged, so only checked for duplicates.
            let _ = logger.emit_sync(tagged(&format!("p{round}-{i}-{j}-{filler}"), j));
        }
        let tag = format!("r{round}-{i}");
        logger.emit_durable_sync(tagged(&tag, i)).unwrap();
        // Printed only now, so every tag the parent reads is acknowledged.
        println!("ack {tag}");
    }
}

/// Small segments and frequent checkpoints and key epochs, so that kills
/// land in rotations, handovers and checkpoint writes too.
fn config(dir: &Path, signer_key: &str) -> LoggerConfig {
    LoggerConfig::new(dir)
        .max_segment_bytes(64 * 1024)
        .epoch(7, Duration::from_secs(3600))
        .checkpoint_signer(CheckpointSigner::from_signer_key(signer_key).unwrap())
        .checkpoint_every_records(5)
        .checkpoint_interval(Duration::from_secs(3600))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

/// One round: starts the child, kills it after `acks` acknowledgements and
/// `delay`, and returns the tags it acknowledged.
fn run_child(
    dir: &Path,
    signer_key: &str,
    round: u32,
    (acks, burst, delay): (u64, u64, Duration),
) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_SIGNER_VAR, signer_key)
        .env(CHILD_ROUND_VAR, round.to_string())
        .env(CHILD_BURST_VAR, burst.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(tag) = line.strip_prefix("ack ")
                && lines_tx.send(tag.to_owned()).is_err()
            {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    while (acked.len() as u64) < acks {
        match lines.recv_timeout(ACK_TIMEOUT) {
            Ok(tag) => acked.push(tag),
            Err(e) => {
                let _ = child.kill();
                panic!("round {round}: the child stopped acknowledging ({e:?})");
            }
        }
    }
    std::thread::sleep(delay);
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no drop.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Whatever the child printed before it died was acknowledged too.
    acked.extend(lines.try_iter());
    acked
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event_and_the_trail_verifies() {
    let seed = env_u64(SEED_VAR).unwrap_or(DEFAULT_SEED);
    let rounds = env_u64(ROUNDS_VAR).map_or(DEFAULT_ROUNDS, |r| {
        u32::try_from(r).unwrap().max(DEFAULT_ROUNDS)
    });
    // Shown with the failure, so the run can be replayed.
    eprintln!("crash test: {SEED_VAR}={seed}, {rounds} rounds");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);

    let dir = tempfile::tempdir().unwrap();
    let signer =
        CheckpointSigner::generate(KeyName::new(&origin_for(key().id().as_str())).unwrap())
            .unwrap();
    let signer_key = signer.signer_key();
    let mut acknowledged = Vec::new();
    for round in 0..rounds {
        // One round in eight kills before the first acknowledgement, often
        // while the child is still opening the trail.
        let acks = match rng.next_u64() % 8 {
            0 => 0,
            _ => 1 + rng.next_u64() % MAX_ACKS_BEFORE_KILL,
        };
        // One in four emits bursts of large events between durable ones.
        let burst = match rng.next_u64() % 4 {
            0 => BURST,
            _ => 0,
        };
        let delay = Duration::from_micros(rng.next_u64() % MAX_DELAY_MICROS);
        let plan = (acks, burst, delay);
        acknowledged.extend(run_child(dir.path(), &signer_key, round, plan));
    }

    // A last, clean start and stop: the trail must still be continuable.
    let logger = AuditLogger::open(config(dir.path(), &signer_key), key()).unwrap();
    logger.shutdown().unwrap();

    let options = CheckpointOptions::new().trusted_key(signer.verifier());
    let report = verify_dir_with_checkpoints(dir.path(), &key(), &options, |_| {}).unwrap();
    assert!(
        report.is_intact(),
        "seed {seed}: {}",
        report.finding.unwrap()
    );
    let tags = tag_counts(dir.path());
    let duplicated: Vec<_> = tags.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "seed {seed}: duplicated {duplicated:?}"
    );
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|t| !tags.contains_key(*t))
        .collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: acknowledged but lost {lost:?}"
    );
    assert!(
        acknowledged.len() as u32 > rounds,
        "too few acknowledgements to prove anything"
    );
    eprintln!(
        "crash test: {} acknowledged, {} starts, {} torn tails recovered",
        acknowledged.len(),
        report
            .by_type
            .get("audit.logger_started")
            .copied()
            .unwrap_or(0),
        report.torn_tails_recovered
    );
}
