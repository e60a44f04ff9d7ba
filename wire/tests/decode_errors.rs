//! Bad input gets a typed error that names the field or position.

use netprobe_wire::{decode, Error};

fn golden(kind: &str) -> serde_json::Value {
    let path = format!("{}/tests/golden/{kind}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden file")).expect("golden json")
}

fn decode_value(v: &serde_json::Value) -> Result<netprobe_wire::Message, Error> {
    decode(&serde_json::to_vec(v).expect("json"))
}

#[test]
fn missing_required_field_is_named() {
    for (kind, field) in [("icmp", "sent"), ("dns", "query_name"), ("mtr", "hops"), ("health", "kafka_connected")] {
        let mut v = golden(kind);
        v.as_object_mut().expect("object").remove(field);
        match decode_value(&v) {
            Err(Error::MissingField { field: f }) => assert_eq!(f, field, "{kind}"),
            other => panic!("{kind} without {field}: expected MissingField, got {other:?}"),
        }
    }
}

#[test]
fn missing_envelope_field_is_named() {
    for field in ["schema", "probe_id", "timestamp", "probe_type"] {
        let mut v = golden("dns");
        v.as_object_mut().expect("object").remove(field);
        match decode_value(&v) {
            Err(Error::MissingField { field: f }) => assert_eq!(f, field),
            other => panic!("without {field}: expected MissingField, got {other:?}"),
        }
    }
}

#[test]
fn unknown_schema_version_is_typed_before_any_field_check() {
    let v = serde_json::json!({"schema": 2, "probe_type": "icmp", "whatever": true});
    match decode_value(&v) {
        Err(Error::UnsupportedSchema { found: 2, supported: 1 }) => {}
        other => panic!("expected UnsupportedSchema, got {other:?}"),
    }
}

#[test]
fn unknown_probe_type_is_typed() {
    let mut v = golden("icmp");
    v["probe_type"] = "smtp".into();
    match decode_value(&v) {
        Err(Error::UnknownProbeType { found }) => assert_eq!(found, "smtp"),
        other => panic!("expected UnknownProbeType, got {other:?}"),
    }
}

#[test]
fn wrong_type_names_the_path() {
    let mut v = golden("mtr");
    v["hops"][1]["ttl"] = 300.into();
    let err = decode_value(&v).expect_err("ttl 300 is no u8");
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidField { .. }), "{err:?}");
    assert!(text.contains("hops[1].ttl"), "{text}");

    let mut v = golden("icmp");
    v["loss_pct"] = "ten".into();
    let text = decode_value(&v).expect_err("string is no f64").to_string();
    assert!(text.contains("`loss_pct`"), "{text}");
}

#[test]
fn truncated_json_gives_line_and_column() {
    let bytes = serde_json::to_vec(&golden("http")).expect("json");
    match decode(&bytes[..bytes.len() / 2]) {
        Err(Error::Syntax { line: 1, column, .. }) => assert!(column > 0),
        other => panic!("expected Syntax, got {other:?}"),
    }
}
