//! Shared output helpers: fallible printing, safe display of names the
//! user or an attacker chose, error chains, progress bars on stderr and
//! compact event summaries for tables.

use std::error::Error;
use std::path::Path;
use std::time::Duration;

use audit_logging::Text;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// `println!` that returns an error instead of panicking when stdout is a
/// full disk, and drops the output when it is a pipe whose reader has gone
/// (`| head`): that is the reader's choice, and the command still finishes
/// its work and exits with its own code.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))?
    };
}
pub(crate) use outln;

/// One line to stdout for [`outln!`].
pub fn write_stdout(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;

    use anyhow::Context as _;

    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// `eprintln!` that never panics: stderr carries notes for people, and a
/// closed or full one must not replace the command's exit code with a
/// panic's.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use errln;

/// Writes `bytes` to the file `path` names, replacing it, for `--out`
/// options. A symbolic link there is refused rather than followed (this
/// tool often runs as root, and a planted link would make it overwrite
/// whatever the link names), and so is anything but a regular file.
pub fn write_out_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    use anyhow::Context as _;

    // O_NONBLOCK: a FIFO there fails the open instead of hanging it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => anyhow::anyhow!(
                "{} is a symbolic link, which is never followed; give the real path",
                shown(path)
            ),
            _ => anyhow::Error::new(e).context(format!("cannot write {}", shown(path))),
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot write {}", shown(path)))?;
    if !meta.is_file() {
        anyhow::bail!("cannot write {}: not a regular file", shown(path));
    }
    file.set_len(0)
        .and_then(|()| file.write_all(bytes))
        .with_context(|| format!("cannot write {}", shown(path)))
}

/// A path for JSON output: its lossy UTF-8 form, since `serde_json` cannot
/// serialize a path that is not UTF-8 (and `json!` would panic on one).
pub fn json_path(path: &Path) -> String {
    path.display().to_string()
}

/// A path as it may be shown on a terminal: control and bidi characters
/// escaped, so a hostile file name cannot rewrite the screen.
pub fn shown(path: &Path) -> Text {
    Text::new(path.display().to_string())
}

/// An error and its causes on one line, each cause once (library errors
/// often repeat their source in their own message), made safe to print.
pub fn describe(err: &anyhow::Error) -> Text {
    let mut line = String::new();
    let mut cause: Option<&(dyn Error + 'static)> = Some(err.as_ref());
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = c.source();
    }
    Text::new(line)
}

/// A byte-counting progress bar on stderr. Hidden when stderr is not a
/// terminal, so scripts and CI logs get no control sequences.
pub fn byte_bar(total: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(byte_style());
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner on stderr for work whose size is not known yet; turn it into
/// a byte bar with [`show_bytes`] once it is.
pub fn pending_bar(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg:>10} {spinner} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Makes `bar` a byte bar of `total` bytes headed `message`.
pub fn show_bytes(bar: &ProgressBar, total: u64, message: &'static str) {
    bar.set_style(byte_style());
    bar.set_message(message);
    bar.set_length(total);
}

fn byte_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// Longest summary cell in a table, in characters.
const SUMMARY_WIDTH: usize = 110;

/// The event's fields other than `type` and `timestamp`, as `key=value`
/// pairs on one line; nested objects are shown as `outer.inner=value`.
pub fn summarize(event: &Value) -> String {
    let mut parts = Vec::new();
    if let Value::Object(map) = event {
        for (k, v) in map {
            if k != "type" && k != "timestamp" {
                flatten(k, v, &mut parts);
            }
        }
    }
    let line = parts.join(" ");
    if line.chars().count() > SUMMARY_WIDTH {
        let cut: String = line.chars().take(SUMMARY_WIDTH.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line
    }
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::String(s) => out.push(format!("{prefix}={s}")),
        other => out.push(format!("{prefix}={other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_flattens_nested_fields_and_skips_type_and_time() {
        let v = serde_json::json!({
            "type": "vram.sealed", "timestamp": "t", "shard_id": "s-1",
            "device": {"name": "sim", "uuid": null, "index": 0}, "bytes": 12
        });
        assert_eq!(
            summarize(&v),
            "shard_id=s-1 device.name=sim device.index=0 bytes=12"
        );
    }

    #[test]
    fn describe_prints_each_cause_once_and_escapes_control_characters() {
        let io = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(io).context("cannot open \u{1b}[2Jtrail: disk on fire");
        assert_eq!(
            describe(&err).as_str(),
            "cannot open \\u{1b}[2Jtrail: disk on fire"
        );
        let err = anyhow::Error::new(std::io::Error::other("root cause")).context("outer");
        assert_eq!(describe(&err).as_str(), "outer: root cause");
    }

    #[test]
    fn long_summaries_are_cut_with_an_ellipsis() {
        let v = serde_json::json!({ "reason": "x".repeat(500) });
        let s = summarize(&v);
        assert_eq!(s.chars().count(), SUMMARY_WIDTH);
        assert!(s.ends_with('…'));
    }
}
