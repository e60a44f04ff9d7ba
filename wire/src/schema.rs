//! JSON Schemas (draft 2020-12) of the wire messages, one per probe type,
//! generated from the Rust types with schemars. `docs/schema/` holds them
//! for consumers outside Rust; a test keeps those files current.

use serde_json::{json, Map, Value};

use crate::{Message, ProbeType, SCHEMA_VERSION};

/// The JSON Schema of one probe type's messages: the envelope (with
/// `schema` fixed to [`SCHEMA_VERSION`]) and that type's body, with only the
/// definitions it uses.
pub fn message_schema(probe_type: ProbeType) -> Value {
    let mut schema = schemars::schema_for!(Message).to_value();
    let Some(root) = schema.as_object_mut() else { unreachable!("schemars always returns an object schema") };
    let variant = root
        .remove("oneOf")
        .and_then(|v| match v {
            Value::Array(variants) => variants.into_iter().find(|v| {
                v.pointer("/properties/probe_type/const").and_then(Value::as_str) == Some(probe_type.as_str())
            }),
            _ => None,
        })
        .unwrap_or_else(|| panic!("schemars output has no oneOf variant for {probe_type}"));
    root.insert("allOf".into(), json!([variant]));
    root.insert("title".into(), json!(format!("netprobe {probe_type} message, schema {SCHEMA_VERSION}")));
    if let Some(p) = root.get_mut("properties").and_then(|p| p.get_mut("schema")) {
        p["const"] = json!(SCHEMA_VERSION);
    }
    prune_defs(root);
    schema
}

/// Removes `$defs` entries that nothing references (transitively).
fn prune_defs(root: &mut Map<String, Value>) {
    let Some(Value::Object(defs)) = root.remove("$defs") else { return };
    let mut used = std::collections::BTreeSet::new();
    let mut pending = refs(&Value::Object(root.clone()));
    while let Some(name) = pending.pop() {
        if used.insert(name.clone()) {
            if let Some(def) = defs.get(&name) {
                pending.extend(refs(def));
            }
        }
    }
    let kept: Map<String, Value> = defs.into_iter().filter(|(k, _)| used.contains(k)).collect();
    if !kept.is_empty() {
        root.insert("$defs".into(), Value::Object(kept));
    }
}

/// Names of the `#/$defs/NAME` references anywhere in `v`.
fn refs(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => r.strip_prefix("#/$defs/").map(str::to_owned).into_iter().collect(),
                _ => refs(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_schema_holds_only_its_own_body() {
        let icmp = message_schema(ProbeType::Icmp);
        let defs = icmp["$defs"].as_object().expect("$defs");
        assert!(defs.contains_key("Icmp") && defs.contains_key("ProbeError"));
        assert!(!defs.contains_key("Dns") && !defs.contains_key("MtrHop"));
        assert_eq!(icmp["properties"]["schema"]["const"], json!(1));
        assert_eq!(icmp["allOf"][0]["properties"]["probe_type"]["const"], json!("icmp"));
    }
}
