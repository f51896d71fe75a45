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
    outln!("keep a copy off this host: whoever holds it can verify, and forge, the trail");
    Ok(Outcome::Success)
}
