//! Wire messages -> line protocol: exact lines for the golden messages, and
//! property tests that parse produced lines back and find the same values:
//! with a port of InfluxDB 2.x's own Go parser for every string, and with
//! the independent parser of `influxdb-line-protocol` for strings without
//! backslashes in tags (where the two parsers agree). The last word is the
//! real server: `tests/stack_points.rs`.

mod common {
    pub mod goparse;
}

use common::goparse;
use influxdb_line_protocol::{parse_lines, FieldValue};
use netprobe_ingest::points::{points, render, render_message, PointError};
use netprobe_wire::msg::{Dns, Icmp};
use netprobe_wire::{decode, Body, ErrorClass, Message, ProbeError, ProbeId, ProbeType, Timestamp};
use proptest::prelude::*;

fn golden(kind: ProbeType) -> Message {
    let path = format!("{}/../wire/tests/golden/{kind}.json", env!("CARGO_MANIFEST_DIR"));
    decode(&std::fs::read(&path).expect("golden file")).expect("golden decodes")
}

/// The lines ingest writes for `msg` (`render_message`, appending after
/// what the buffer holds), checked to be the bytes of `render(points)`.
fn lines(msg: &Message) -> String {
    let mut direct = b"before\n".to_vec();
    let n = render_message(msg, &mut direct).expect("valid message");
    let direct = direct.split_off(b"before\n".len());
    let mut out = Vec::new();
    let pts = points(msg).expect("valid message");
    render(&pts, &mut out);
    assert_eq!(String::from_utf8_lossy(&direct), String::from_utf8_lossy(&out), "render_message == render(points)");
    assert_eq!(n, pts.len(), "line count");
    String::from_utf8(direct).expect("utf-8")
}

/// `render_message` refuses what `points` refuses, with the same error,
/// and leaves the buffer as it was.
fn refused_alike(msg: &Message) -> Result<PointError, TestCaseError> {
    let mut out = b"kept".to_vec();
    let direct = render_message(msg, &mut out);
    prop_assert_eq!(&out, b"kept", "buffer untouched on error");
    let err = points(msg).expect_err("refused");
    prop_assert_eq!(direct, Err(err.clone()));
    Ok(err)
}

const TS: &str = "1795455109123456789";

#[test]
fn golden_messages_render_to_the_design_schema() {
    let expected = [
        (ProbeType::Icmp, vec![format!("icmp,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,target=192.0.2.10 sent=5i,received=4i,loss_pct=20,resolved_ip=\"192.0.2.10\",rtt_min_ms=11.204,rtt_avg_ms=11.532,rtt_median_ms=11.49,rtt_max_ms=11.947,rtt_stddev_ms=0.271,jitter_ms=0.314 {TS}")]),
        (ProbeType::Dns, vec![format!("dns,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,resolver=192.0.2.53:53,query_name=example.com,record_type=A answer_count=2i,rcode=\"NOERROR\",latency_ms=2.75,answers=\"[\\\"192.0.2.80\\\",\\\"192.0.2.81\\\"]\" {TS}")]),
        (ProbeType::Http, vec![format!("http,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,url=https://example.com/,method=GET success=true,redirects=1i,dns_ms=1.5,connect_ms=10.25,tls_ms=21,ttfb_ms=35.125,total_ms=70.5,http_version=\"HTTP/2\",tls_version=\"TLSv1.3\",status_code=200i,cert_not_after=1800057599i,response_bytes=1256i {TS}")]),
        (ProbeType::Mtr, vec![
            format!("mtr_path,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,target=192.0.2.10 destination_reached=true,hop_count=2i,path_hash=\"5f1c0a9e7d3b2a14\" {TS}"),
            format!("mtr_hop,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,target=192.0.2.10,ttl=1 sent=10i,received=0i,loss_pct=100,other_ip_count=0i {TS}"),
            format!("mtr_hop,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,target=192.0.2.10,ttl=2 sent=10i,received=10i,loss_pct=0,other_ip_count=0i,ip=\"192.0.2.10\",hostname=\"target.example.net\",rtt_last_ms=11.5,rtt_avg_ms=11.6,rtt_best_ms=11.2,rtt_worst_ms=12.25,rtt_stddev_ms=0.3,asn=64500i {TS}"),
        ]),
        (ProbeType::Bgp, vec![format!("bgp,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,prefix=192.0.2.0/24,event=origin_change peer_asn=3333i,peer_ip=\"2001:db8::1\",collector=\"rrc00\",expected_origins=\"64500\",as_path=\"3333 1299 64666\",communities=\"3333:100 64666:1:2\",source=\"ris-live\",next_hop=\"2001:db8::1\",origin_asn=64666i {TS}")]),
        (ProbeType::Registry, vec![format!("agent_registry,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,instance=icmp hostname=\"pop-fra-01.netprobe.example\",available_metrics=\"icmp,dns,http\",version=\"0.1.0\",uptime_s=3600i,started_at=\"2026-11-23T16:31:49.500000000Z\",os=\"Linux 6.1.0 (Debian 12)\",ip=\"198.51.100.7\" {TS}")]),
        (ProbeType::Health, vec![format!("probe_health,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,instance=icmp uptime_s=3600i,failures_last_hour=3i,runs_last_hour=720i,spool_messages=0i,spool_dropped_messages=0i,kafka_connected=true,last_successful_run=1795455100i {TS}")]),
    ];
    for (kind, want) in expected {
        let got = lines(&golden(kind));
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(got, want, "{kind}");
        for line in parse_lines(&got.join("\n")) {
            line.unwrap_or_else(|e| panic!("{kind}: our line does not parse: {e}"));
        }
    }
}

#[test]
fn dns_txt_answers_with_commas_and_quotes_stay_apart() {
    let msg = Message::new(
        ProbeId("p".into()),
        "l",
        Timestamp::from_unix_nanos(1_795_455_109_123_456_789),
        Body::Dns(Dns {
            resolver: "192.0.2.53:53".into(),
            query_name: "example.com".into(),
            record_type: "TXT".into(),
            rcode: Some("NOERROR".into()),
            latency_ms: Some(1.5),
            answers: vec!["a,b".into(), "say \"hi\"".into()],
            answer_count: 2,
            error: None,
        }),
    );
    // By hand: the JSON array ["a,b","say \"hi\""], then `"` and `\` escaped
    // for a line-protocol string field.
    let want = r#"dns,probe_id=p,location=l,resolver=192.0.2.53:53,query_name=example.com,record_type=TXT answer_count=2i,rcode="NOERROR",latency_ms=1.5,answers="[\"a,b\",\"say \\\"hi\\\"\"]" 1795455109123456789"#;
    assert_eq!(lines(&msg).trim_end(), want);
    let line = goparse::parse(want);
    let stored = &line.fields.iter().find(|(k, _)| k == "answers").expect("answers field").1;
    assert_eq!(stored, r#"["a,b","say \"hi\""]"#, "what InfluxDB stores");
}

#[test]
fn instance_is_a_tag_of_registry_and_health_validated_like_every_tag() {
    for kind in [ProbeType::Registry, ProbeType::Health] {
        let mut msg = golden(kind);
        let set = |msg: &mut Message, v: &str| match &mut msg.body {
            Body::Registry(r) => r.instance = Some(v.into()),
            Body::Health(h) => h.instance = Some(v.into()),
            _ => unreachable!(),
        };
        set(&mut msg, "dns a,b");
        let line = goparse::parse(lines(&msg).trim_end());
        assert_eq!(line.tags[2], ("instance".to_owned(), "dns a,b".to_owned()), "{kind}");
        set(&mut msg, "x\n");
        assert_eq!(points(&msg), Err(PointError::LineBreakInTag { tag: "instance" }), "{kind}");
        set(&mut msg, "x\\");
        assert_eq!(points(&msg), Err(PointError::TrailingBackslashInTag { tag: "instance" }), "{kind}");
        match &mut msg.body {
            Body::Registry(r) => r.instance = None,
            Body::Health(h) => h.instance = None,
            _ => unreachable!(),
        }
        assert!(!lines(&msg).contains("instance="), "{kind}: no instance, no tag");
    }
}

/// The fields added to `bgp` within schema 1 (issue 11): a message written
/// by hand, the line written by hand from DESIGN.md's bgp row plus them.
#[test]
fn bgp_events_of_the_monitor_carry_their_added_fields() {
    let json = r#"{"schema": 1, "probe_id": "pop-fra-01", "location": "Frankfurt, DE",
        "timestamp": "2026-11-23T17:31:49.123456789Z", "probe_type": "bgp", "event": "rpki_invalid",
        "prefix": "192.0.2.0/25", "origin_asn": 64500, "expected_origins": [64500], "as_path": [3333, 64500],
        "peer_ip": "192.0.2.254", "peer_asn": 3333, "collector": "rrc00", "next_hop": null, "communities": [],
        "source": "mrt", "watched_prefix": "192.0.2.0/24", "origin_expected": true, "peers_visible": 4,
        "rpki_reason": "max_length"}"#;
    let msg = decode(json.as_bytes()).expect("decodes");
    assert_eq!(
        lines(&msg),
        format!(
            "bgp,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,prefix=192.0.2.0/25,event=rpki_invalid peer_asn=3333i,\
             peer_ip=\"192.0.2.254\",collector=\"rrc00\",expected_origins=\"64500\",as_path=\"3333 64500\",\
             communities=\"\",source=\"mrt\",origin_asn=64500i,watched_prefix=\"192.0.2.0/24\",peers_visible=4i,\
             rpki_reason=\"max_length\",origin_expected=true {TS}\n"
        )
    );
}

#[test]
fn mtr_hop_other_responders_are_counted_and_listed() {
    let mut msg = golden(ProbeType::Mtr);
    let Body::Mtr(m) = &mut msg.body else { unreachable!() };
    m.hops[1].other_ips = vec!["192.0.2.11".parse().expect("ip"), "2001:db8::7".parse().expect("ip")];
    let text = lines(&msg);
    // By hand: the golden hop 2 line with the count and the joined list.
    let want = format!(
        "mtr_hop,probe_id=pop-fra-01,location=Frankfurt\\,\\ DE,target=192.0.2.10,ttl=2 sent=10i,received=10i,loss_pct=0,\
         other_ip_count=2i,ip=\"192.0.2.10\",other_ips=\"192.0.2.11,2001:db8::7\",hostname=\"target.example.net\",\
         rtt_last_ms=11.5,rtt_avg_ms=11.6,rtt_best_ms=11.2,rtt_worst_ms=12.25,rtt_stddev_ms=0.3,asn=64500i {TS}"
    );
    assert_eq!(text.lines().nth(2), Some(want.as_str()));
    let line = goparse::parse(&want);
    let stored = &line.fields.iter().find(|(k, _)| k == "other_ips").expect("other_ips field").1;
    assert_eq!(stored, "192.0.2.11,2001:db8::7");
}

fn icmp(probe_id: String, location: String, target: String, error: Option<String>) -> Message {
    Message::new(
        ProbeId(probe_id),
        location,
        Timestamp::from_unix_nanos(1_795_455_109_123_456_789),
        Body::Icmp(Icmp {
            target,
            resolved_ip: None,
            sent: 3,
            received: 0,
            loss_pct: 100.0,
            rtt_min_ms: None,
            rtt_avg_ms: None,
            rtt_median_ms: None,
            rtt_max_ms: None,
            rtt_stddev_ms: None,
            jitter_ms: None,
            error: error.map(|message| ProbeError { class: ErrorClass::Timeout, message }),
        }),
    )
}

#[test]
fn backslashes_in_tags_are_written_as_influxdb_2_reads_them() {
    let msg = icmp("a,b=c d\"\\x".into(), "x\\,y".into(), "t".into(), None);
    let text = lines(&msg);
    assert_eq!(text.lines().next().map(|l| l.split(' ').next()), Some(Some("icmp,probe_id=a\\,b\\=c\\")));
    let line = goparse::parse(text.trim_end());
    assert_eq!(line.tags[0], ("probe_id".to_owned(), "a,b=c d\"\\x".to_owned()));
    assert_eq!(line.tags[1], ("location".to_owned(), "x\\,y".to_owned()));
}

#[test]
fn what_line_protocol_cannot_carry_is_refused() {
    let msg = icmp("pop\n1".into(), "x".into(), "t".into(), None);
    assert_eq!(points(&msg), Err(PointError::LineBreakInTag { tag: "probe_id" }));
    assert_eq!(refused_alike(&msg).ok(), Some(PointError::LineBreakInTag { tag: "probe_id" }));
    let msg = icmp("p".into(), "x".into(), "a\rb".into(), None);
    assert_eq!(points(&msg), Err(PointError::LineBreakInTag { tag: "target" }));
    let msg = icmp(String::new(), "x".into(), "t".into(), None);
    assert_eq!(points(&msg), Err(PointError::EmptyProbeId));
    let msg = icmp("a,b=c d\"\\".into(), "x".into(), "t".into(), None);
    assert_eq!(points(&msg), Err(PointError::TrailingBackslashInTag { tag: "probe_id" }), "DESIGN's example id");
    let mut msg = icmp("p".into(), "x".into(), "t".into(), None);
    if let Body::Icmp(m) = &mut msg.body {
        m.rtt_avg_ms = Some(f64::NAN);
    }
    assert_eq!(points(&msg), Err(PointError::NonFinite { field: "rtt_avg_ms" }));
    assert_eq!(refused_alike(&msg).ok(), Some(PointError::NonFinite { field: "rtt_avg_ms" }));
}

#[test]
fn render_message_refuses_with_the_first_error_points_names() {
    // Two faults: an integer beyond i64 (found while building the fields)
    // and a tag ending in `\` (checked once the points are built). `points`
    // names the integer; the direct writer, which sees the tag first, must too.
    let mut msg = golden(ProbeType::Health);
    msg.location = "Frankfurt\\".into();
    if let Body::Health(m) = &mut msg.body {
        m.uptime_s = u64::MAX;
    }
    let want = PointError::IntegerOverflow { field: "uptime_s", value: u64::MAX };
    assert_eq!(refused_alike(&msg).ok(), Some(want));
    // Only the tag: the tag is named.
    let mut msg = golden(ProbeType::Mtr);
    msg.location = "a\rb".into();
    assert_eq!(refused_alike(&msg).ok(), Some(PointError::LineBreakInTag { tag: "location" }));
    // Year 2263: past i64 nanoseconds.
    let msg = decode(
        &std::fs::read_to_string(format!("{}/../wire/tests/golden/icmp.json", env!("CARGO_MANIFEST_DIR")))
            .expect("golden file")
            .replace("2026-11-23T", "2263-11-23T")
            .into_bytes(),
    )
    .expect("decodes");
    assert!(matches!(refused_alike(&msg), Ok(PointError::TimestampOutOfRange(_))));
}

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-c ,=\"\\\\\n\r]{0,10}", "[a-z]{0,3}\\\\"]
}

fn check(
    msg: &Message,
    want_tags: &[(&str, &str)],
    want_str_fields: &[(&str, Option<&str>)],
) -> Result<(), TestCaseError> {
    let result = points(msg);
    if result.is_err() {
        refused_alike(msg)?;
    }
    if msg.probe_id.as_str().is_empty() {
        prop_assert_eq!(result, Err(PointError::EmptyProbeId));
        return Ok(());
    }
    // The first tag line protocol cannot carry is the one refused.
    let refused = want_tags.iter().find_map(|(k, v)| {
        let tag = *["probe_id", "location", "target", "resolver", "query_name", "record_type"]
            .iter()
            .find(|t| *t == k)
            .expect("known tag");
        if v.contains(['\n', '\r']) {
            Some(PointError::LineBreakInTag { tag })
        } else if v.ends_with('\\') {
            Some(PointError::TrailingBackslashInTag { tag })
        } else {
            None
        }
    });
    if let Some(err) = refused {
        prop_assert_eq!(result, Err(err));
        return Ok(());
    }
    let pts = result.expect("valid");
    let mut out = Vec::new();
    render(&pts, &mut out);
    let mut direct = Vec::new();
    prop_assert_eq!(render_message(msg, &mut direct), Ok(1));
    prop_assert_eq!(&direct, &out, "render_message == render(points)");
    let text = String::from_utf8(out).expect("utf-8");
    prop_assert!(text.ends_with('\n'));

    // InfluxDB 2.x's reading, for every input.
    let line = goparse::parse(&text[..text.len() - 1]);
    prop_assert_eq!(line.timestamp, 1_795_455_109_123_456_789);
    for (k, v) in want_tags {
        let got = line.tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        // Empty tag values are left out (InfluxDB has no empty tags).
        prop_assert_eq!(got, (!v.is_empty()).then_some(*v), "tag {} in {:?}", k, text);
    }
    for (k, v) in want_str_fields {
        let got = line.fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        prop_assert_eq!(got, *v, "field {} in {:?}", k, text);
    }

    // The independent parser agrees wherever tags hold no backslash.
    if want_tags.iter().all(|(_, v)| !v.contains('\\')) {
        let parsed: Vec<_> =
            parse_lines(&text).collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))?;
        prop_assert_eq!(parsed.len(), 1, "{:?}", text);
        let line = &parsed[0];
        prop_assert_eq!(line.timestamp, Some(1_795_455_109_123_456_789));
        for (k, v) in want_tags {
            let got = line.tag_value(k).map(|t| t.as_str().to_owned());
            prop_assert_eq!(got, (!v.is_empty()).then(|| v.to_string()), "tag {} in {:?}", k, text);
        }
        for (k, v) in want_str_fields {
            let got = match line.field_value(k) {
                Some(FieldValue::String(s)) => Some(s.as_str().to_owned()),
                None => None,
                Some(other) => return Err(TestCaseError::fail(format!("field {k} has type {other:?}"))),
            };
            prop_assert_eq!(got, v.map(str::to_owned), "field {} in {:?}", k, text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn icmp_strings_survive_line_protocol(probe_id in nasty(), location in nasty(), target in nasty(), error in proptest::option::of(nasty())) {
        let msg = icmp(probe_id.clone(), location.clone(), target.clone(), error.clone());
        let error_field = error.map(|m| format!("timeout: {m}"));
        check(&msg, &[("probe_id", &probe_id), ("location", &location), ("target", &target)], &[("error", error_field.as_deref())])?;
    }

    #[test]
    fn dns_strings_survive_line_protocol(probe_id in nasty(), resolver in nasty(), query_name in nasty(), rcode in nasty(), answers in proptest::collection::vec(nasty(), 0..3)) {
        let msg = Message::new(
            ProbeId(probe_id.clone()),
            "loc",
            Timestamp::from_unix_nanos(1_795_455_109_123_456_789),
            Body::Dns(Dns {
                resolver: resolver.clone(),
                query_name: query_name.clone(),
                record_type: "TXT".into(),
                rcode: Some(rcode.clone()),
                latency_ms: Some(1.25),
                answers: answers.clone(),
                answer_count: answers.len() as u32,
                error: None,
            }),
        );
        // serde_json's encoding of the list, independent of ingest's code;
        // and the stored string reads back as the same list.
        let json = serde_json::to_string(&answers).expect("json");
        prop_assert_eq!(serde_json::from_str::<Vec<String>>(&json).expect("json"), answers.clone());
        check(&msg, &[("probe_id", &probe_id), ("resolver", &resolver), ("query_name", &query_name), ("record_type", "TXT")], &[("rcode", Some(&rcode)), ("answers", Some(&json))])?;
    }
}
