//! `sealtrail keygen`: create an audit key file.

use anyhow::Context;
use audit_logging::AuditKey;

use crate::Outcome;
use crate::cli::KeygenArgs;
use crate::output::{outln, shown};

pub fn run(args: &KeygenArgs) -> anyhow::Result<Outcome> {
    let key = AuditKey::generate()?;
    key.save_new(&args.out)
        .with_context(|| format!("cannot create key file {}", shown(&args.out)))?;
    outln!(
        "wrote audit key {} to {} (mode 0600)",
        key.id(),
        shown(&args.out)
    );
    outln!(
        "`sealtrail seal` needs it only to start a trail; then move it off this host: \
         `verify` needs it, and whoever holds it can forge the whole trail"
    );
    Ok(Outcome::Success)
}
