//! What the binary's tests share: the `sealtrail` binary, run with none of
//! the caller's `SEALTRAIL_*` settings, so that a developer's own audit
//! directory, keys or backend never leak into a test.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::Path;

/// The binary as a plain `std` command, for tests that wire its standard
/// streams or signal it themselves.
pub fn binary() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("sealtrail"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SEALTRAIL_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The binary, run in `cwd`.
pub fn sealtrail(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = binary();
    cmd.current_dir(cwd);
    assert_cmd::Command::from_std(cmd)
}
