//! Hostile field content: control characters, terminal escapes, bidi
//! overrides, line breaks, fake JSON and huge strings are recorded (never
//! refused), read back escaped or truncated with the marker, keep every
//! segment at one record per line, and leave a log that verifies.

mod common;

use std::fs;

use audit_logging::{
    AuditEvent, DeviceRef, Digest, MAX_RECORD_BYTES, MAX_TEXT_BYTES, TRUNCATION_MARKER, Text, query,
};
use chrono::Utc;
use common::{assert_intact, key, open, records};

/// Strings a hostile caller might put in any field.
fn hostile_strings() -> Vec<(&'static str, String)> {
    vec![
        ("nul", "before\0after".into()),
        ("ansi color", "\x1b[31mred\x1b[0m".into()),
        ("osc title", "\x1b]0;t\x07owned".into()),
        ("rlo", "user\u{202E}gnp.exe".into()),
        ("lri", "a\u{2066}b\u{2069}c".into()),
        ("newline", "line one\nline two".into()),
        ("carriage return", "ok\rFAKE".into()),
        ("line separator", "a\u{2028}b\u{2029}c".into()),
        ("fake json", "\"},\"seq\":1,\"mac\":\"".into()),
        (
            "fake record",
            format!(
                "\"}}}},\"mac\":\"{}\"}}\n{{\"v\":1,\"seq\":99,",
                "0".repeat(64)
            ),
        ),
        ("backslashes", "\\\\\\u0000\\n".into()),
        ("one megabyte", "x".repeat(1 << 20)),
        ("ten megabytes of escapes", "\x1b".repeat(10 << 20)),
        ("one megabyte of quotes", "\"".repeat(1 << 20)),
    ]
}

/// An event whose free-form fields all hold `s`.
fn event_with(s: &str) -> AuditEvent {
    AuditEvent::AuthFailure {
        timestamp: Utc::now(),
        attempted_actor: s.into(),
        method: s.into(),
        source_ip: None,
        reason: s.into(),
    }
}

/// The widest event: seven free-form fields, all holding `s`.
fn sealed_with(s: &str) -> AuditEvent {
    AuditEvent::VramSealed {
        timestamp: Utc::now(),
        worker_id: s.into(),
        shard_id: s.into(),
        model_ref: s.into(),
        shard_index: 0,
        shard_count: 1,
        device: DeviceRef {
            backend: s.into(),
            index: 0,
            uuid: Some(s.into()),
            name: s.into(),
            simulated: true,
        },
        bytes: 1,
        digest: Digest([1; 32]),
        key_id: s.into(),
    }
}

#[test]
fn hostile_strings_are_recorded_read_back_sanitized_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let logger = open(dir.path(), &key());
    let cases = hostile_strings();
    for (name, s) in &cases {
        logger
            .emit_sync(event_with(s))
            .unwrap_or_else(|e| panic!("{name} refused: {e}"));
        logger
            .emit_sync(sealed_with(s))
            .unwrap_or_else(|e| panic!("{name} refused: {e}"));
    }
    let report = logger.shutdown().unwrap();
    assert_eq!(report.stats.accepted, 2 * cases.len() as u64);

    // Read back: every field is exactly the sanitized text.
    let events = query::read_events(dir.path()).unwrap();
    let hostile_events = &events[1..events.len() - 1];
    assert_eq!(hostile_events.len(), 2 * cases.len());
    for ((name, s), pair) in cases.iter().zip(hostile_events.chunks(2)) {
        let expected = Text::new(s);
        let AuditEvent::AuthFailure {
            attempted_actor,
            method,
            reason,
            ..
        } = &pair[0]
        else {
            panic!("{name}: {:?}", pair[0]);
        };
        for field in [attempted_actor, method, reason] {
            assert_eq!(field, &expected, "{name}");
        }
        let AuditEvent::VramSealed { device, .. } = &pair[1] else {
            panic!("{name}: {:?}", pair[1]);
        };
        assert_eq!(device.uuid.as_ref(), Some(&expected), "{name}");
        assert_eq!(pair[1], {
            let mut e = sealed_with(s);
            if let AuditEvent::VramSealed { timestamp, .. } = &mut e {
                *timestamp = pair[1].timestamp();
            }
            e
        });
    }

    // The log verifies and holds every record.
    let verified = assert_intact(dir.path(), &key());
    assert_eq!(verified.records, 2 * cases.len() as u64 + 2);
}

#[test]
fn sanitized_text_has_no_raw_control_or_bidi_characters_and_marks_truncation() {
    for (name, s) in hostile_strings() {
        let t = Text::new(&s);
        assert!(t.as_str().len() <= MAX_TEXT_BYTES, "{name}");
        assert!(
            !t.as_str().chars().any(|c| c.is_control()
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')),
            "{name}: {:?}",
            t.as_str()
        );
        if s.len() > MAX_TEXT_BYTES {
            assert!(t.is_truncated(), "{name}");
            let marker = format!("{TRUNCATION_MARKER}{}]", s.len());
            assert!(t.as_str().ends_with(&marker), "{name}: {}", t.as_str());
        }
    }
    // Spot checks of the visible escapes.
    assert_eq!(Text::new("a\0b").as_str(), "a\\u{0}b");
    assert_eq!(Text::new("\x1b]0;t\x07").as_str(), "\\u{1b}]0;t\\u{7}");
    assert_eq!(Text::new("\u{202E}").as_str(), "\\u{202e}");
    assert_eq!(Text::new("\r\n").as_str(), "\\u{d}\\u{a}");
}

#[test]
fn segment_files_stay_one_record_per_line_with_no_raw_hostile_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = audit_logging::LoggerConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let logger = audit_logging::AuditLogger::open(config, key()).unwrap();
    for (_, s) in hostile_strings() {
        logger.emit_sync(event_with(&s)).unwrap();
        logger.emit_sync(sealed_with(&s)).unwrap();
    }
    logger.shutdown().unwrap();
    let verified = assert_intact(dir.path(), &key());

    let segments = common::segments(dir.path());
    assert!(segments.len() > 1, "hostile records span segments");
    let mut lines = 0u64;
    for seg in &segments {
        let data = fs::read(seg).unwrap();
        assert!(data.ends_with(b"\n"));
        lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        // No raw control byte but the line ends, no raw bidi override,
        // nothing a terminal `cat` would act on.
        for (i, &b) in data.iter().enumerate() {
            assert!(
                b == b'\n' || !(b < 0x20 || b == 0x7f),
                "{seg:?} byte {i} is {b:#04x}"
            );
        }
        for bad in ["\u{202E}", "\u{2066}", "\u{2028}"] {
            assert!(
                !data.windows(3).any(|w| w == bad.as_bytes()),
                "{seg:?} holds a raw {bad:?}"
            );
        }
    }
    assert_eq!(lines, verified.records, "one record per line");
    assert_eq!(records(dir.path()).len() as u64, verified.records);
}

#[test]
fn the_largest_possible_event_fits_in_one_record() {
    // Quotes and backslashes double under JSON escaping, in every field.
    let dir = tempfile::tempdir().unwrap();
    let logger = open(dir.path(), &key());
    for worst in [
        "\"".repeat(1 << 20),
        "\\".repeat(1 << 20),
        "\x1b".repeat(1 << 20),
    ] {
        logger.emit_sync(sealed_with(&worst)).unwrap();
    }
    logger.shutdown().unwrap();
    assert_intact(dir.path(), &key());
    for rec in records(dir.path()) {
        assert!(
            rec.bytes.len() < MAX_RECORD_BYTES,
            "record {} is {} bytes",
            rec.seq,
            rec.bytes.len()
        );
    }
}

#[test]
fn hostile_text_written_into_a_record_by_hand_is_sanitized_on_read() {
    // Text that did not come through `Text::new` (a hand-edited or foreign
    // record) is sanitized when it is deserialized.
    let json = r#"{"type":"auth.failure","timestamp":"2026-12-03T12:00:00Z","attempted_actor":"\u001b[2J\u202e","method":"x","source_ip":null,"reason":"r"}"#;
    let event: AuditEvent = serde_json::from_str(json).unwrap();
    let AuditEvent::AuthFailure {
        attempted_actor, ..
    } = event
    else {
        panic!("{event:?}");
    };
    assert_eq!(attempted_actor.as_str(), "\\u{1b}[2J\\u{202e}");
}
