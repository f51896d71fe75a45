//! Command-line definitions.

use std::path::PathBuf;

use bytesize::ByteSize;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default audit directory, relative to the working directory.
pub const DEFAULT_AUDIT_DIR: &str = "sealtrail-audit";
/// Default audit key file, relative to the working directory.
pub const DEFAULT_KEY_FILE: &str = "sealtrail.key";
/// Default checkpoint signing key file name, in the audit key's directory.
pub const DEFAULT_CHECKPOINT_KEY_FILE: &str = "sealtrail-checkpoint.key";

#[derive(Debug, Parser)]
#[command(
    name = "sealtrail",
    version,
    about = "Seal model weights into GPU memory and prove what happened with a tamper-evident audit trail.",
    long_about = "Seal model weights into (real or simulated) GPU memory and prove what happened \
with a tamper-evident audit trail.\n\n\
Start with `sealtrail demo` to see the whole path on a small generated model. \
For real use: `sealtrail keygen`, then `sealtrail seal MODEL`, then `sealtrail verify`.",
    after_help = "Exit codes: 0 success; 1 verification failed (tampered audit trail, a trail \
cut back below or rewritten before its anchor, a proof that does not hold, a seal that does \
not match device memory, or a model that is not the expected file or fails its manifest or \
signature); 2 usage, input or I/O error; 130 `seal` interrupted by Ctrl-C or SIGTERM (what it \
had sealed was released). Diagnostics go to stderr, their detail set by RUST_LOG (default \
warn)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new audit key file and checkpoint signing key file (mode 0600).
    Keygen(KeygenArgs),
    /// Run the whole path on a generated sample model in a scratch directory.
    Demo(DemoArgs),
    /// Seal a model (safetensors, GGUF, or a sharded safetensors checkpoint) into device
    /// memory, verify every shard, and record each step.
    Seal(SealArgs),
    /// Prove the integrity of an audit trail.
    Verify(VerifyArgs),
    /// Print audit events, filtered by type, severity and time.
    Query(QueryArgs),
    /// Signed checkpoints of the audit trail.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Write a proof (JSON) that anyone can check with the checkpoint verifier key alone.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Delete or archive the oldest closed segments once they are past a retention time and
    /// covered by an exported checkpoint, recording it in the trail.
    #[command(long_about = RETENTION_ABOUT)]
    Retention(RetentionArgs),
}

const RETENTION_ABOUT: &str = "Delete or archive the oldest closed segments of the audit trail \
once they are past a retention time and covered by an exported checkpoint (an anchor), recording \
what was removed in the trail itself.\n\n\
First the whole trail is verified, with every stored checkpoint's signature and the anchor, \
which the trail must extend; a trail that does not verify exits 1 and nothing is touched. Then \
the oldest closed segments go, in order, while each one's every record is covered by the anchor \
and older than --older-than by its timestamp; the segment being written is never retired. An \
audit.segments_retired record names each one (sequence range, lines, SHA-256) and the cut, \
retired.json in the audit directory records where the trail now begins, and only then are the \
files deleted, or moved into --archive. `sealtrail verify` then checks the trail from the cut \
and holds retired.json against the record. Proofs (`sealtrail prove`) need the whole trail, so \
they are refused after a retention; proofs written before still verify.";

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that record SEQ is in the trail the newest stored checkpoint signs.
    Inclusion(InclusionArgs),
    /// Prove that the trail of the stored checkpoint of NEW records extends that of OLD records.
    Consistency(ConsistencyArgs),
}

#[derive(Debug, Args)]
pub struct InclusionArgs {
    /// Sequence number of the record.
    pub seq: u64,
    /// Audit directory.
    #[arg(long, env = "SEALTRAIL_AUDIT_DIR", default_value = DEFAULT_AUDIT_DIR)]
    pub audit_dir: PathBuf,
    /// Write the proof to this file (replacing it; a symbolic link is refused) instead of
    /// standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConsistencyArgs {
    /// Tree size of the older stored checkpoint.
    pub old: u64,
    /// Tree size of the newer stored checkpoint.
    pub new: u64,
    /// Audit directory.
    #[arg(long, env = "SEALTRAIL_AUDIT_DIR", default_value = DEFAULT_AUDIT_DIR)]
    pub audit_dir: PathBuf,
    /// Write the proof to this file (replacing it; a symbolic link is refused) instead of
    /// standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Write the newest signed checkpoint, to keep off this host as an anchor for
    /// `verify --anchor`.
    Export(ExportArgs),
    /// Print the verifier key (`<name>+<hash>+<key>`, public) of a checkpoint signing key
    /// file, as `keygen` printed it, for `--checkpoint-key`.
    VerifierKey(VerifierKeyArgs),
}

#[derive(Debug, Args)]
pub struct VerifierKeyArgs {
    /// Checkpoint signing key file. Default: sealtrail-checkpoint.key beside the audit key.
    #[arg(long, env = "SEALTRAIL_CHECKPOINT_KEY")]
    pub checkpoint_key_file: Option<PathBuf>,
    /// Audit key file, beside which the default signing key file is looked for.
    #[arg(long, env = "SEALTRAIL_KEY", default_value = DEFAULT_KEY_FILE)]
    pub key: PathBuf,
}

impl VerifierKeyArgs {
    /// Where the checkpoint signing key is looked for.
    pub fn checkpoint_key_path(&self) -> PathBuf {
        self.checkpoint_key_file
            .clone()
            .unwrap_or_else(|| self.key.with_file_name(DEFAULT_CHECKPOINT_KEY_FILE))
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Audit directory.
    #[arg(long, env = "SEALTRAIL_AUDIT_DIR", default_value = DEFAULT_AUDIT_DIR)]
    pub audit_dir: PathBuf,
    /// Write the checkpoint to this file (replacing it; a symbolic link is refused) instead of
    /// standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Checkpoint verifier key (`<name>+<hash>+<key>`): export only a checkpoint it signed.
    #[arg(long, value_name = "VKEY", env = "SEALTRAIL_CHECKPOINT_VKEY")]
    pub checkpoint_key: Option<String>,
}

/// Where the audit trail lives and which key authenticates it.
#[derive(Debug, Args)]
pub struct TrailArgs {
    /// Audit directory.
    #[arg(long, env = "SEALTRAIL_AUDIT_DIR", default_value = DEFAULT_AUDIT_DIR)]
    pub audit_dir: PathBuf,
    /// Audit key file, as written by `sealtrail keygen`.
    #[arg(long, env = "SEALTRAIL_KEY", default_value = DEFAULT_KEY_FILE)]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key; refuses to overwrite an existing file.
    #[arg(long, env = "SEALTRAIL_KEY", default_value = DEFAULT_KEY_FILE)]
    pub out: PathBuf,
    /// Where to write the checkpoint signing key; refuses to overwrite an existing file.
    /// Default: sealtrail-checkpoint.key beside the audit key.
    #[arg(long, env = "SEALTRAIL_CHECKPOINT_KEY")]
    pub checkpoint_key_out: Option<PathBuf>,
    /// Also write a seal key file here (mode 0600), for `seal --seal-key-file`.
    #[arg(long, value_name = "FILE")]
    pub seal_key_out: Option<PathBuf>,
}

/// Where sealed shards live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// A simulation in host memory: nothing is on a GPU (the output says SIMULATED).
    Host,
    /// An NVIDIA GPU through the CUDA driver, loaded at run time.
    Cuda,
}

/// Which backend and device hold the shards.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Where the shards live: `host` (a simulation in host memory) or `cuda` (an NVIDIA GPU;
    /// needs the NVIDIA driver and NVRTC).
    #[arg(long, value_enum, default_value = "host", env = "SEALTRAIL_BACKEND")]
    pub backend: BackendChoice,
    /// CUDA device index, for --backend cuda.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub device: u32,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's model, key and audit trail in this directory (created if missing;
    /// must be empty). Without it a temporary directory is used and removed.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// The model: a safetensors or GGUF file (told apart by its first bytes), or a sharded
    /// safetensors checkpoint, as its directory or its model.safetensors.index.json.
    pub model: PathBuf,
    #[command(flatten)]
    pub trail: TrailArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Largest shard, e.g. 64MiB or 1GB; a single larger tensor gets a shard of its own.
    #[arg(long, default_value = "64MiB", value_parser = parse_shard_size)]
    pub max_shard_bytes: ByteSize,
    /// Refuse the model unless the file's SHA-256 is this (64 hex characters), as its
    /// distribution publishes it; for a checkpoint, the index file's.
    #[arg(long, value_name = "HEX")]
    pub expected_sha256: Option<audit_logging::Digest>,
    /// Refuse the model unless its file is listed in this manifest with its SHA-256: a JSON
    /// object {"NAME": "HEX"} or `sha256sum` output, names relative to the model's directory.
    #[arg(long, value_name = "FILE", conflicts_with = "signature")]
    pub manifest: Option<PathBuf>,
    /// Refuse the model unless this OpenSSF model signature (the `model.sig` bundle that
    /// `model_signing sign key` writes over the model's directory) verifies with --signer-key,
    /// and every file in the model's directory is one it signs, with its SHA-256.
    #[arg(long, value_name = "FILE", requires = "signer_key")]
    pub signature: Option<PathBuf>,
    /// The signer's ECDSA P-256 public key (PEM) for --signature.
    #[arg(long, value_name = "PEM", requires = "signature")]
    pub signer_key: Option<PathBuf>,
    /// Seal key file (`sealtrail keygen --seal-key-out`), so that seals use a known key id;
    /// without it a fresh random key is made for this run and never stored.
    #[arg(long, env = "SEALTRAIL_SEAL_KEY", value_name = "FILE")]
    pub seal_key_file: Option<PathBuf>,
    /// Checkpoint signing key file, as written by `sealtrail keygen`; a file named here must
    /// exist. Default: sealtrail-checkpoint.key beside the audit key, used when it exists.
    #[arg(long, env = "SEALTRAIL_CHECKPOINT_KEY")]
    pub checkpoint_key_file: Option<PathBuf>,
    /// Worker id recorded in every event.
    #[arg(long, env = "SEALTRAIL_WORKER_ID", default_value = "sealtrail-cli")]
    pub worker_id: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub trail: TrailArgs,
    /// Checkpoint verifier key (`<name>+<hash>+<key>`, as `sealtrail keygen` prints it):
    /// check the signature of every stored checkpoint. Without it only their roots are checked.
    #[arg(long, env = "SEALTRAIL_CHECKPOINT_VKEY", value_name = "VKEY")]
    pub checkpoint_key: Option<String>,
    /// A checkpoint exported earlier (`sealtrail checkpoint export`) and kept off this host:
    /// prove the trail still has every record it commits to, unchanged.
    #[arg(long, value_name = "FILE", requires = "checkpoint_key")]
    pub anchor: Option<PathBuf>,
    /// Check a proof written by `sealtrail prove` instead of the trail: needs only
    /// --checkpoint-key, not the audit key or directory.
    #[arg(
        long,
        value_name = "FILE",
        requires = "checkpoint_key",
        conflicts_with = "anchor"
    )]
    pub proof: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub trail: TrailArgs,
    /// Retire segments whose newest record is older than this: 30d, 12h, 90m, 2w, ...
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: chrono::TimeDelta,
    /// A checkpoint exported earlier (`sealtrail checkpoint export`) and kept off this host: only
    /// segments it covers are retired, and only if the trail still extends it.
    #[arg(long, value_name = "FILE")]
    pub anchor: PathBuf,
    /// Checkpoint verifier key (`<name>+<hash>+<key>`, as `sealtrail keygen` prints it): the
    /// anchor's and every stored checkpoint's signature are checked with it.
    #[arg(long, env = "SEALTRAIL_CHECKPOINT_VKEY", value_name = "VKEY")]
    pub checkpoint_key: String,
    /// Move retired segments into this directory (created 0700 if missing) instead of deleting
    /// them. A symbolic link, or a directory other users can write to, is refused.
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Verify and print what would be retired, changing nothing (the writer lock is still taken).
    #[arg(long)]
    pub dry_run: bool,
    /// Checkpoint signing key file, as written by `sealtrail keygen`, so the retention's own
    /// records are checkpointed too; a file named here must exist. Default:
    /// sealtrail-checkpoint.key beside the audit key, used when it exists.
    #[arg(long, env = "SEALTRAIL_CHECKPOINT_KEY")]
    pub checkpoint_key_file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

impl RetentionArgs {
    /// Where the checkpoint signing key is looked for.
    pub fn checkpoint_key_path(&self) -> PathBuf {
        self.checkpoint_key_file
            .clone()
            .unwrap_or_else(|| self.trail.key.with_file_name(DEFAULT_CHECKPOINT_KEY_FILE))
    }
}

/// Parses a retention age such as `30d` or `12h` (humantime's syntax).
fn parse_age(s: &str) -> Result<chrono::TimeDelta, String> {
    let age = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not an age like 30d or 12h: {e}"))?;
    chrono::TimeDelta::from_std(age).map_err(|_| format!("{s:?} is too long an age"))
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Audit directory.
    #[arg(long, env = "SEALTRAIL_AUDIT_DIR", default_value = DEFAULT_AUDIT_DIR)]
    pub audit_dir: PathBuf,
    /// Verify the chain with this key while reading (authenticators, order, links), and stop
    /// with exit 1 at the first record that fails. Defaults to ./sealtrail.key when that file
    /// exists; without a key, records are only parsed.
    #[arg(long, env = "SEALTRAIL_KEY")]
    pub key: Option<PathBuf>,
    /// Event type to show, e.g. vram.sealed; a trailing dot matches a family (vram.).
    /// Repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Show events of at least this severity: info, low, medium, high, critical.
    #[arg(long)]
    pub severity: Option<audit_logging::Severity>,
    /// Show events at or after this time (RFC 3339, or a date YYYY-MM-DD in UTC).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Show events before this time (RFC 3339, or a date YYYY-MM-DD in UTC).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl KeygenArgs {
    /// Where the checkpoint signing key goes.
    pub fn checkpoint_key_path(&self) -> PathBuf {
        self.checkpoint_key_out
            .clone()
            .unwrap_or_else(|| self.out.with_file_name(DEFAULT_CHECKPOINT_KEY_FILE))
    }
}

impl SealArgs {
    /// Where the checkpoint signing key is looked for.
    pub fn checkpoint_key_path(&self) -> PathBuf {
        self.checkpoint_key_file
            .clone()
            .unwrap_or_else(|| self.trail.key.with_file_name(DEFAULT_CHECKPOINT_KEY_FILE))
    }
}

/// Parses a shard size; zero is refused.
fn parse_shard_size(s: &str) -> Result<ByteSize, String> {
    let size: ByteSize = s
        .parse()
        .map_err(|e| format!("{s:?} is not a size like 64MiB: {e}"))?;
    if size.as_u64() == 0 {
        return Err("a shard must hold at least one byte".into());
    }
    // The parser saturates what does not fit in 64 bits.
    if size.as_u64() == u64::MAX {
        return Err(format!("{s:?} is more bytes than a shard can have"));
    }
    Ok(size)
}

/// Parses an RFC 3339 time or a plain UTC date.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!(
                "{s:?} is not a time: use RFC 3339 (2026-12-03T18:00:00Z) or a date (2026-12-03)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ages_parse_in_days_hours_and_weeks_and_reject_garbage() {
        assert_eq!(parse_age("30d").unwrap(), chrono::TimeDelta::days(30));
        assert_eq!(parse_age("12h").unwrap(), chrono::TimeDelta::hours(12));
        assert_eq!(parse_age("2w").unwrap(), chrono::TimeDelta::days(14));
        for bad in ["", "30", "thirty days", "-1d", "\u{1b}[31m"] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_parse_as_rfc3339_or_dates_and_reject_garbage() {
        assert_eq!(
            parse_time("2026-12-03").unwrap().to_rfc3339(),
            "2026-12-03T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-12-03T19:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-03T18:00:00+00:00"
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-12-03T25:00:00Z",
            "\u{1b}[31m",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }
}
