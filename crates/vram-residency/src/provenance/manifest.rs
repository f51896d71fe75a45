//! Expected-digest manifests: which SHA-256 each model file must have.
//!
//! Two spellings are accepted, told apart by the first non-blank byte:
//!
//! - a JSON object from file name to 64 hex characters,
//!   `{"model.safetensors": "9f86d0…"}`;
//! - the output of `sha256sum` (GNU coreutils): one `HEX  NAME` line per
//!   file (`HEX *NAME` in binary mode), blank lines and `#` comments
//!   skipped. Lines that `sha256sum` escapes (a leading `\`, for names with
//!   a newline or backslash) are refused rather than guessed at.
//!
//! Names are relative to the model's directory, `/`-separated, and may not
//! be absolute or climb out with `..`; a name listed twice is an error, so
//! a manifest cannot say two things about one file. The whole manifest is
//! held in memory, bounded by [`MAX_MANIFEST_BYTES`].

use std::collections::BTreeMap;
use std::path::Path;

use audit_logging::Digest;

use super::ProvenanceError;
use super::files::{check_relative_name, read_bounded};

/// Largest manifest read, in bytes: 4 MiB, some forty thousand entries,
/// while a hostile file cannot make us hold gigabytes.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// File names and the SHA-256 each must have. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestManifest {
    entries: BTreeMap<String, Digest>,
}

impl DigestManifest {
    /// Reads the manifest at `path` (not through a symbolic link).
    pub fn load(path: &Path) -> Result<DigestManifest, ProvenanceError> {
        let bytes = read_bounded(path, MAX_MANIFEST_BYTES, |bytes| {
            ProvenanceError::ManifestTooLarge {
                bytes,
                limit: MAX_MANIFEST_BYTES,
            }
        })?;
        DigestManifest::parse(&bytes)
    }

    /// Parses either spelling of a manifest.
    pub fn parse(bytes: &[u8]) -> Result<DigestManifest, ProvenanceError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > MAX_MANIFEST_BYTES {
            return Err(ProvenanceError::ManifestTooLarge {
                bytes: len,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ProvenanceError::ManifestSyntax {
            line: 0,
            reason: "not UTF-8".into(),
        })?;
        if text.trim_start().starts_with('{') {
            parse_json(text)
        } else {
            parse_sha256sum(text)
        }
    }

    /// A manifest of the given entries; names are checked as when parsed.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, Digest)>,
    ) -> Result<DigestManifest, ProvenanceError> {
        let mut manifest = DigestManifest {
            entries: BTreeMap::new(),
        };
        for (name, digest) in entries {
            manifest.insert(&name, digest)?;
        }
        Ok(manifest)
    }

    /// The digest listed for `name`, if any.
    pub fn get(&self, name: &str) -> Option<Digest> {
        self.entries.get(name).copied()
    }

    /// Every entry, by name.
    pub fn entries(&self) -> &BTreeMap<String, Digest> {
        &self.entries
    }

    /// Adds an entry; a name listed twice is refused.
    fn insert(&mut self, name: &str, digest: Digest) -> Result<(), ProvenanceError> {
        check_relative_name(name)?;
        if self.entries.insert(name.to_owned(), digest).is_some() {
            return Err(ProvenanceError::DuplicateName {
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}

fn parse_json(text: &str) -> Result<DigestManifest, ProvenanceError> {
    // serde_json would keep only the last of two equal keys; a list of
    // pairs keeps both so that the duplicate is seen.
    let pairs: Pairs = serde_json::from_str(text).map_err(ProvenanceError::ManifestJson)?;
    let mut manifest = DigestManifest {
        entries: BTreeMap::new(),
    };
    for (name, hex) in pairs.0 {
        let digest = parse_digest(&hex).map_err(|reason| ProvenanceError::ManifestSyntax {
            line: 0,
            reason: format!("digest of {name:?}: {reason}"),
        })?;
        manifest.insert(&name, digest)?;
    }
    Ok(manifest)
}

fn parse_sha256sum(text: &str) -> Result<DigestManifest, ProvenanceError> {
    let mut manifest = DigestManifest {
        entries: BTreeMap::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let line_no = index.saturating_add(1);
        let syntax = |reason: &str| ProvenanceError::ManifestSyntax {
            line: line_no,
            reason: reason.to_owned(),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('\\') {
            return Err(syntax("escaped file names are not supported"));
        }
        let (hex, rest) = line
            .split_at_checked(64)
            .ok_or_else(|| syntax("expected 64 hex characters, two spaces and a name"))?;
        let digest = parse_digest(hex).map_err(|reason| syntax(&reason))?;
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(|| syntax("expected two spaces (or ` *`) between digest and name"))?;
        manifest.insert(name, digest)?;
    }
    if manifest.entries.is_empty() {
        return Err(ProvenanceError::ManifestSyntax {
            line: 0,
            reason: "no entries".into(),
        });
    }
    Ok(manifest)
}

/// A SHA-256 as 64 hex characters, either case.
pub(crate) fn parse_digest(hex: &str) -> Result<Digest, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex, &mut bytes)
        .map_err(|e| format!("not a sha-256 of 64 hex characters ({e})"))?;
    Ok(Digest(bytes))
}

/// A JSON object read as its key/value pairs, in order, duplicates kept.
struct Pairs(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object from file name to sha-256 hex")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "8fa0bf8d7636b4470d2f3bf19ac91aa987b0e6a8a19a46d6237f42482d41012f";
    const B: &str = "CF59DD6BF05461E0A2D73A26D8D42F9EE791478B07B4633B7E7B65A49C7AA979";

    #[test]
    fn both_spellings_give_the_same_entries() {
        let json = format!(r#" {{"config.json": "{A}", "weights/model.safetensors": "{B}"}}"#);
        let sums =
            format!("# made by sha256sum\n{A}  config.json\r\n\n{B} *weights/model.safetensors\n");
        let a = DigestManifest::parse(json.as_bytes()).unwrap();
        let b = DigestManifest::parse(sums.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("config.json").unwrap().to_hex(), A);
        assert_eq!(
            a.get("weights/model.safetensors").unwrap().to_hex(),
            B.to_ascii_lowercase()
        );
        assert_eq!(a.get("other"), None);
    }

    #[test]
    fn a_name_listed_twice_is_refused_in_either_spelling() {
        let json = format!(r#"{{"x": "{A}", "x": "{B}"}}"#);
        let sums = format!("{A}  x\n{B}  x\n");
        for text in [json, sums] {
            let err = DigestManifest::parse(text.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ProvenanceError::DuplicateName { .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn traversal_names_are_refused() {
        for name in ["../model.safetensors", "/etc/passwd", "a/../../b"] {
            let text = format!("{A}  {name}\n");
            let err = DigestManifest::parse(text.as_bytes()).unwrap_err();
            assert!(matches!(err, ProvenanceError::UnsafeName { .. }), "{err}");
        }
    }

    #[test]
    fn malformed_lines_say_which_line() {
        for (text, line) in [
            (format!("{A}  ok\nnot a digest\n"), 2),
            (format!("{A}\tx\n"), 1),
            (format!("\\{A}  x\\ny\n"), 1),
            (format!("{}  x\n", &A[..63]), 1),
        ] {
            let err = DigestManifest::parse(text.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ProvenanceError::ManifestSyntax { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn empty_garbage_and_oversized_manifests_are_refused() {
        for text in [
            &b""[..],
            b"\n# nothing\n",
            b"{",
            b"[1]",
            b"{\"x\": 1}",
            b"\xff\xfe",
        ] {
            assert!(DigestManifest::parse(text).is_err(), "{text:?}");
        }
        let huge = vec![b' '; usize::try_from(MAX_MANIFEST_BYTES).unwrap() + 1];
        let err = DigestManifest::parse(&huge).unwrap_err();
        assert!(
            matches!(err, ProvenanceError::ManifestTooLarge { .. }),
            "{err}"
        );
    }
}
