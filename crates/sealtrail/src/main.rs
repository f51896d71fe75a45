//! `sealtrail`: the operator's command-line tool.
//!
//! Each subcommand lives in its own module under `cmd`. Commands return an
//! [`Outcome`]; anything that goes wrong before a verdict is reached is an
//! error. The mapping to exit codes is in one place, [`main`]:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success; for `verify`, the trail is intact (and extends the `--anchor`), or the `--proof` holds |
//! | 1 | verification failed: the trail is tampered (a stored checkpoint or the anchor it no longer matches included; for `retention`, nothing is then retired), a proof does not hold, `prove` finds the trail no longer matches its checkpoint, a seal does not match device memory, or a model is not the expected file (its digest, manifest or signature) |
//! | 2 | usage, input or I/O error, a `--checkpoint-key` of another trail, an anchor that is not a checkpoint of this trail under `--checkpoint-key`, a file that is not a proof (clap's own usage errors also exit 2) |

mod cli;
mod cmd;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// How a command that ran to completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out.
    Success,
    /// A verification ran and failed.
    VerificationFailed,
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(args) => cmd::keygen::run(&args),
        Command::Demo(args) => cmd::demo::run(&args),
        Command::Seal(args) => cmd::seal::run(&args),
        Command::Verify(args) => cmd::verify::run(&args),
        Command::Query(args) => cmd::query::run(&args),
        Command::Checkpoint(cmd) => cmd::checkpoint::run(&cmd),
        Command::Prove(cmd) => cmd::prove::run(&cmd),
        Command::Retention(args) => cmd::retention::run(&args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::VerificationFailed) => ExitCode::from(1),
        Err(err) => {
            output::errln!("error: {}", output::describe(&err));
            ExitCode::from(if is_interrupted(&err) {
                130
            } else if is_verification_failure(&err) {
                1
            } else {
                2
            })
        }
    }
}

/// A seal stopped by Ctrl-C or SIGTERM: 128 + SIGINT, as a shell reports a
/// command the interrupt ended.
fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<vram_residency::SealModelError>(),
            Some(vram_residency::SealModelError::Cancelled)
        )
    })
}

/// Errors that are a verdict rather than a failure to reach one: a model
/// that is not the expected file or fails its provenance check, a trail that does not verify (for
/// `query --key`, or a log that no longer matches the checkpoint `prove`
/// was asked to prove against, or a segment that changed while
/// `retention` retired it).
fn is_verification_failure(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<vram_residency::SealModelError>()
            .is_some_and(vram_residency::SealModelError::is_verdict)
            || matches!(
                cause.downcast_ref::<audit_logging::query::QueryError>(),
                Some(audit_logging::query::QueryError::Tampered(_))
            )
            || matches!(
                cause.downcast_ref::<audit_logging::logtree::ProveError>(),
                Some(audit_logging::logtree::ProveError::Mismatch(_))
            )
            || matches!(
                cause.downcast_ref::<audit_logging::retention::RetentionError>(),
                Some(audit_logging::retention::RetentionError::Changed { .. })
            )
    })
}

/// Diagnostics go to stderr, off unless `RUST_LOG` asks for them, so stdout
/// stays clean for people and `jq`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
