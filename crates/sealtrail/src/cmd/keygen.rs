//! `sealtrail keygen`: create an audit key file.

use anyhow::Context;
use audit_logging::AuditKey;

use crate::Outcome;
use crate::cli::KeygenArgs;

pub fn run(args: &KeygenArgs) -> anyhow::Result<Outcome> {
    let key = AuditKey::generate()?;
    key.save_new(&args.out)
        .with_context(|| format!("cannot create key file {}", args.out.display()))?;
    println!(
        "wrote audit key {} to {} (mode 0600)",
        key.id(),
        args.out.display()
    );
    println!("keep a copy off this host: whoever holds it can verify, and forge, the trail");
    Ok(Outcome::Success)
}
