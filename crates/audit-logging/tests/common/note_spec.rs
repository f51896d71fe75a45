//! An independent reading of c2sp.org/signed-note and
//! c2sp.org/tlog-checkpoint, built only on `ed25519-dalek`, `sha2` and
//! `base64`, using nothing from the crate under test: if the crate and this
//! module disagree about the format, a third party's tool would disagree with
//! one of them too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// A trusted Ed25519 key: name, 4-byte key ID, public key.
pub struct Key {
    pub name: String,
    pub id: [u8; 4],
    pub key: VerifyingKey,
}

/// "key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]"
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, 0x01]);
    h.update(public_key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// "Key names MUST be non-empty and MUST NOT contain any Unicode spaces
/// or plus (U+002B) characters."
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// `<name>+<hex key ID>+<base64(0x01 || key)>`, as the Go package writes it.
pub fn parse_verifier_key(vkey: &str) -> Result<Key, String> {
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(hex_id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not three parts".into());
    };
    let id = u32::from_str_radix(hex_id, 16).map_err(|e| e.to_string())?;
    let data = BASE64.decode(b64).map_err(|e| e.to_string())?;
    if !valid_name(name) || hex_id.len() != 8 || data.len() != 33 || data[0] != 0x01 {
        return Err("malformed".into());
    }
    let public: [u8; 32] = data[1..].try_into().unwrap();
    if key_id(name, &public) != id.to_be_bytes() {
        return Err("key ID does not match".into());
    }
    let key = VerifyingKey::from_bytes(&public).map_err(|e| e.to_string())?;
    Ok(Key {
        name: name.to_owned(),
        id: id.to_be_bytes(),
        key,
    })
}

/// Returns the note text if at least one signature from `trusted`
/// verifies and none from `trusted` fails.
pub fn verify(msg: &[u8], trusted: &[&Key]) -> Result<String, String> {
    // "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII
    // control characters (those below U+0020) other than newline."
    let msg = std::str::from_utf8(msg).map_err(|e| e.to_string())?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err("control character".into());
    }
    // "...followed by one or more signature lines ... newline."
    let Some(body) = msg.strip_suffix('\n') else {
        return Err("no final newline".into());
    };
    let lines: Vec<&str> = body.split('\n').collect();
    // "the text is separated from the signatures by the last empty line"
    let Some(blank) = lines.iter().rposition(|l| l.is_empty()) else {
        return Err("no blank line".into());
    };
    // "a text ending in newline": an empty text does not.
    if blank == 0 {
        return Err("empty text".into());
    }
    let signature_lines = &lines[blank + 1..];
    if signature_lines.is_empty() {
        return Err("no signatures".into());
    }
    // "The note text includes the final newline but not the separating
    // blank line."
    let mut text = lines[..blank].join("\n");
    text.push('\n');

    let mut verified = 0;
    for line in signature_lines {
        // "em dash (U+2014), space (U+0020), key name, space,
        // base64-encoded signature"
        let rest = line.strip_prefix("\u{2014} ").ok_or("no em dash")?;
        let (name, b64) = rest.split_once(' ').ok_or("no space")?;
        let raw = BASE64.decode(b64).map_err(|e| e.to_string())?;
        if !valid_name(name) || raw.len() < 5 {
            return Err(format!("malformed signature line {line:?}"));
        }
        let (id, sig) = raw.split_at(4);
        // "Verifiers MUST ignore signatures from unknown keys"
        let Some(key) = trusted.iter().find(|k| k.name == name && k.id == id) else {
            continue;
        };
        // "If the key name and ID match a known key, verifiers MUST
        // verify the signature." Ed25519 per RFC 8032, over the text.
        let sig = Signature::from_slice(sig).map_err(|e| e.to_string())?;
        key.key
            .verify(text.as_bytes(), &sig)
            .map_err(|_| format!("signature by {name} does not verify"))?;
        verified += 1;
    }
    if verified == 0 {
        return Err("no signature from a known key".into());
    }
    Ok(text)
}

/// tlog-checkpoint: origin, decimal size without leading zeros,
/// base64 root hash, then non-empty extension lines.
pub fn parse_checkpoint(text: &str) -> Result<(String, u64, Vec<u8>, Vec<String>), String> {
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .ok_or("no newline")?
        .split('\n')
        .collect();
    if lines.len() < 3 || lines.iter().any(|l| l.is_empty()) {
        return Err("fewer than three non-empty lines".into());
    }
    let size = lines[1];
    if !size.bytes().all(|b| b.is_ascii_digit()) || size.len() > 1 && size.starts_with('0') {
        return Err("bad size".into());
    }
    let size = size.parse().map_err(|_| "size too large")?;
    let root = BASE64.decode(lines[2]).map_err(|e| e.to_string())?;
    let extensions = lines[3..].iter().map(|s| s.to_string()).collect();
    Ok((lines[0].to_owned(), size, root, extensions))
}
