use std::collections::HashSet;

use super::*;

#[test]
fn every_variant_serializes_under_its_stable_name() {
    let events = samples::all();
    assert_eq!(events.len(), AuditEvent::TYPES.len());
    for (event, expected) in events.iter().zip(AuditEvent::TYPES) {
        assert_eq!(event.event_type(), expected);
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(
            json["type"], expected,
            "serde name differs from event_type()"
        );
    }
}

#[test]
fn type_names_are_unique_and_dotted() {
    let names: HashSet<_> = AuditEvent::TYPES.iter().collect();
    assert_eq!(names.len(), AuditEvent::TYPES.len());
    assert!(
        AuditEvent::TYPES
            .iter()
            .all(|n| n.contains('.') && n.is_ascii())
    );
}

#[test]
fn every_variant_round_trips_through_json() {
    for event in samples::all() {
        let json = serde_json::to_string(&event).unwrap();
        let back: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.timestamp(), event.timestamp());
    }
}

#[test]
fn seal_failures_auth_failures_and_policy_violations_are_critical() {
    let critical: Vec<_> = samples::all()
        .into_iter()
        .filter(|e| e.is_critical())
        .map(|e| e.event_type())
        .collect();
    for name in [
        "auth.failure",
        "vram.seal_verification_failed",
        "vram.policy_violation",
    ] {
        assert!(critical.contains(&name), "{name} must be critical");
    }
    assert!(!critical.contains(&"vram.sealed"));
}

#[test]
fn a_low_severity_policy_violation_is_still_critical() {
    let mut events = samples::all();
    let Some(AuditEvent::PolicyViolation { severity, .. }) = events
        .iter_mut()
        .find(|e| e.event_type() == "vram.policy_violation")
    else {
        panic!("sample missing");
    };
    *severity = Severity::Info;
    let event = events
        .into_iter()
        .find(|e| e.event_type() == "vram.policy_violation")
        .unwrap();
    assert!(event.is_critical());
}

#[test]
fn unknown_event_type_is_rejected_on_read() {
    let err = serde_json::from_str::<AuditEvent>(
        r#"{"type":"vram.teleported","timestamp":"2026-12-03T12:00:00Z"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("vram.teleported"));
}

#[test]
fn severity_parses_case_insensitively_and_rejects_unknown_names() {
    assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
    assert!("urgent".parse::<Severity>().is_err());
    assert!(Severity::Info < Severity::Critical);
}

#[test]
fn digest_rejects_short_or_non_hex_strings() {
    assert!("abc".parse::<Digest>().is_err());
    assert!("zz".repeat(32).parse::<Digest>().is_err());
    assert_eq!("07".repeat(32).parse::<Digest>().unwrap(), Digest([7; 32]));
}
