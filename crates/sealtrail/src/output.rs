//! Shared output helpers: progress bars on stderr and compact event
//! summaries for tables.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// A byte-counting progress bar on stderr. Hidden when stderr is not a
/// terminal, so scripts and CI logs get no control sequences.
pub fn byte_bar(total: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
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
    fn long_summaries_are_cut_with_an_ellipsis() {
        let v = serde_json::json!({ "reason": "x".repeat(500) });
        let s = summarize(&v);
        assert_eq!(s.chars().count(), SUMMARY_WIDTH);
        assert!(s.ends_with('…'));
    }
}
