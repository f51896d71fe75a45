//! Sanitized text for event fields.
//!
//! Every free-form string in an [`AuditEvent`](crate::AuditEvent) is a
//! [`Text`]. Building one never fails: a hostile caller must not be able to
//! hide its own event by making it invalid. Instead the text is made safe:
//!
//! - characters that can rewrite a terminal or a viewer (C0 and C1 control
//!   characters including NUL, newline and ESC, DEL, and the Unicode bidi
//!   embedding, override and isolate marks) are replaced by a visible escape
//!   such as `\u{1b}`;
//! - text longer than [`MAX_TEXT_BYTES`] after escaping is cut at a character
//!   boundary and ends with a marker that says how long the original was.
//!
//! Deserialized text goes through the same sanitizer, so records read back
//! from a file that someone edited cannot smuggle control characters to the
//! terminal of the person reading them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest sanitized field, in bytes, before truncation.
///
/// Large enough for paths, user agents and error messages; small enough that
/// a record with a few dozen fields stays well under
/// [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES).
pub const MAX_TEXT_BYTES: usize = 2048;

/// Appended to truncated text, before the original length in bytes.
pub const TRUNCATION_MARKER: &str = "…[truncated, original bytes: ";

/// A string that is safe to store and to print: bounded and free of control
/// and bidi characters. See the [module docs](self).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text(String);

impl Text {
    /// Sanitizes `raw`. Never fails; see the [module docs](self).
    pub fn new(raw: impl AsRef<str>) -> Self {
        Text(sanitize(raw.as_ref()))
    }

    /// Sanitizes bytes that may not be UTF-8; invalid sequences become U+FFFD.
    pub fn from_bytes_lossy(raw: &[u8]) -> Self {
        Text::new(String::from_utf8_lossy(raw))
    }

    /// The sanitized text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether sanitizing cut the original short.
    pub fn is_truncated(&self) -> bool {
        self.0.contains(TRUNCATION_MARKER)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(raw: &str) -> Self {
        Text::new(raw)
    }
}

impl From<String> for Text {
    fn from(raw: String) -> Self {
        Text::new(raw)
    }
}

impl From<&String> for Text {
    fn from(raw: &String) -> Self {
        Text::new(raw)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Serializes a path as its lossy UTF-8 display form. A derived
/// `Serialize` of a `PathBuf` fails on a name that is not UTF-8, and a
/// report about a trail must not fail because of the trail's file names.
pub(crate) fn serialize_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&path.display())
}

/// [`serialize_path`] for an optional path.
pub(crate) fn serialize_opt_path<S: Serializer>(
    path: &Option<PathBuf>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => serializer.serialize_some(&path.display().to_string()),
        None => serializer.serialize_none(),
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Text::new(raw))
    }
}

/// Whether `c` must not reach a log file or terminal as itself.
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidi marks, embeddings, overrides and isolates (Trojan Source).
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators end lines in some viewers.
            | '\u{2028}' | '\u{2029}'
        )
}

fn sanitize(raw: &str) -> String {
    use std::fmt::Write as _;

    // Where to cut if the result turns out too long: the marker and the
    // decimal length must still fit within MAX_TEXT_BYTES.
    let budget = MAX_TEXT_BYTES.saturating_sub(TRUNCATION_MARKER.len().saturating_add(21));
    let mut cut = None;
    let mut out = String::with_capacity(raw.len().min(MAX_TEXT_BYTES));
    for c in raw.chars() {
        let before = out.len();
        if is_hostile(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        if cut.is_none() && out.len() > budget {
            cut = Some(before);
        }
        if out.len() > MAX_TEXT_BYTES {
            out.truncate(cut.unwrap_or(before));
            let _ = write!(out, "{TRUNCATION_MARKER}{}]", raw.len());
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            Text::new("worker-7 sealed shard 3/12").as_str(),
            "worker-7 sealed shard 3/12"
        );
    }

    #[test]
    fn nul_escape_newline_and_bidi_are_escaped() {
        let t = Text::new("a\0b\x1b[31mc\nd\u{202E}e\u{2066}f");
        assert_eq!(
            t.as_str(),
            "a\\u{0}b\\u{1b}[31mc\\u{a}d\\u{202e}e\\u{2066}f"
        );
    }

    #[test]
    fn one_megabyte_string_is_truncated_with_marker() {
        let raw = "x".repeat(1 << 20);
        let t = Text::new(&raw);
        assert!(t.as_str().len() <= MAX_TEXT_BYTES);
        assert!(t.is_truncated());
        assert!(
            t.as_str()
                .ends_with(&format!("{TRUNCATION_MARKER}{}]", 1 << 20))
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let raw = "é".repeat(MAX_TEXT_BYTES);
        let t = Text::new(&raw);
        assert!(t.as_str().len() <= MAX_TEXT_BYTES);
        assert!(t.is_truncated());
    }

    #[test]
    fn text_exactly_at_the_limit_is_kept_whole() {
        let raw = "y".repeat(MAX_TEXT_BYTES);
        assert_eq!(Text::new(&raw).as_str(), raw);
    }

    #[test]
    fn deserializing_hostile_json_sanitizes() {
        let t: Text = serde_json::from_str(r#""evil\u001b]0;title\u0007""#).unwrap();
        assert_eq!(t.as_str(), "evil\\u{1b}]0;title\\u{7}");
    }

    proptest! {
        #[test]
        fn sanitized_text_is_bounded_and_has_no_hostile_chars(raw in ".*", pad in 0usize..4000) {
            let raw = format!("{raw}{}", "\u{202E}".repeat(pad));
            let t = Text::new(&raw);
            prop_assert!(t.as_str().len() <= MAX_TEXT_BYTES);
            prop_assert!(!t.as_str().chars().any(is_hostile));
        }

        #[test]
        fn sanitizing_is_idempotent(raw in "\\PC*") {
            let once = Text::new(&raw);
            prop_assert_eq!(Text::new(once.as_str()), once);
        }
    }
}
