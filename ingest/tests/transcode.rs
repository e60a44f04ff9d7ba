//! The JSON -> line protocol transcoder writes exactly what the reference
//! path writes (the oracle: `netprobe_wire::decode`, then `render_message`,
//! itself held to `render(points)` and to InfluxDB's parser in
//! `tests/points.rs`), or declines. Cases: the golden messages as agents
//! encode them, typed variants of them (floats of every scale, extremes of
//! every integer, nulls, IPv6, other responders, errors, instances,
//! strings that need escapes or cannot be carried) and textual variants
//! (key order, whitespace, number forms, repeated and unknown keys).

use netprobe_ingest::points::{render_message, render_payload, transcode, RenderError};
use netprobe_wire::{decode, Body, ErrorClass, Message, ProbeError, ProbeId, ProbeType, Timestamp};

fn golden(kind: ProbeType) -> Message {
    let path = format!("{}/../wire/tests/golden/{kind}.json", env!("CARGO_MANIFEST_DIR"));
    decode(&std::fs::read(&path).expect("golden file")).expect("golden decodes")
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True once in `n` draws.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// A finite float: what probes write (ms with 3 decimals), whole
    /// numbers, every bit pattern, and the edges.
    fn float(&mut self) -> f64 {
        const EDGES: [f64; 10] =
            [0.0, -0.0, 1e-7, 1e21, 4294967295.5, 1e-300, 1.7976931348623157e308, 0.1, 99.99995, 1e15];
        match self.next() % 5 {
            0 => (self.next() % 10_000_000) as f64 / 1000.0,
            1 => (self.next() % 1_000_000_000_000) as f64 / 10f64.powi((self.next() % 8) as i32),
            2 => EDGES[(self.next() % EDGES.len() as u64) as usize],
            _ => loop {
                let v = f64::from_bits(self.next());
                if v.is_finite() {
                    break v;
                }
            },
        }
    }

    fn opt_float(&mut self) -> Option<f64> {
        (!self.one_in(6)).then(|| self.float())
    }

    fn u64(&mut self) -> u64 {
        [0, 1, u64::from(u32::MAX), i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX, self.next()]
            [(self.next() % 7) as usize]
    }

    fn string(&mut self) -> String {
        const PARTS: [&str; 9] = ["pop-fra1", "a b", "x,y=z", "\"q\"", "back\\", "line\nbreak", "ünï", "", "::1"];
        PARTS[(self.next() % PARTS.len() as u64) as usize].to_owned()
    }

    fn error(&mut self) -> Option<ProbeError> {
        self.one_in(3).then(|| ProbeError { class: ErrorClass::Timeout, message: self.string() })
    }

    fn ip(&mut self) -> Option<std::net::IpAddr> {
        ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "10.0.0.255"]
            .get((self.next() % 5) as usize)
            .map(|s| s.parse().expect("address"))
    }
}

/// A variant of `msg` with every body value drawn again.
fn vary(msg: &Message, rng: &mut Rng) -> Message {
    let mut m = msg.clone();
    if rng.one_in(4) {
        m.probe_id = ProbeId(rng.string());
    }
    if rng.one_in(4) {
        m.location = rng.string();
    }
    m.timestamp = Timestamp::from_unix_nanos(rng.next() as i64 / 2);
    match &mut m.body {
        Body::Icmp(b) => {
            b.target = rng.string();
            b.resolved_ip = rng.ip();
            (b.sent, b.received) = (rng.u64() as u32, rng.next() as u32);
            b.loss_pct = rng.float();
            (b.rtt_min_ms, b.rtt_avg_ms, b.rtt_median_ms) = (rng.opt_float(), rng.opt_float(), rng.opt_float());
            (b.rtt_max_ms, b.rtt_stddev_ms, b.jitter_ms) = (rng.opt_float(), rng.opt_float(), rng.opt_float());
            b.error = rng.error();
        }
        Body::Dns(b) => {
            (b.resolver, b.query_name) = (rng.string(), rng.string());
            b.rcode = (!rng.one_in(3)).then(|| rng.string());
            b.latency_ms = rng.opt_float();
            b.answers = (0..rng.next() % 4).map(|_| rng.string()).collect();
            b.answer_count = rng.u64() as u32;
            b.error = rng.error();
        }
        Body::Http(b) => {
            (b.url, b.method) = (rng.string(), rng.string());
            b.status_code = (!rng.one_in(3)).then(|| rng.next() as u16);
            b.success = rng.one_in(2);
            (b.dns_ms, b.connect_ms, b.tls_ms) = (rng.opt_float(), rng.opt_float(), rng.opt_float());
            (b.ttfb_ms, b.total_ms) = (rng.opt_float(), rng.opt_float());
            b.response_bytes = (!rng.one_in(3)).then(|| rng.u64());
            b.http_version = rng.one_in(2).then(|| rng.string());
            b.cert_not_after = rng.one_in(2).then(|| Timestamp::from_unix_nanos(rng.next() as i64 / 2));
            b.redirects = rng.u64() as u32;
            b.error = rng.error();
        }
        Body::Mtr(b) => {
            b.target = rng.string();
            b.destination_reached = rng.one_in(2);
            b.hop_count = rng.u64() as u32;
            b.error = rng.error();
            let keep = (rng.next() % (b.hops.len() as u64 + 1)) as usize;
            b.hops.truncate(keep);
            for hop in &mut b.hops {
                hop.ttl.0 = rng.next() as u8;
                hop.ip = rng.ip();
                hop.other_ips = (0..rng.next() % 3).filter_map(|_| rng.ip()).collect();
                hop.hostname = rng.one_in(2).then(|| rng.string());
                hop.asn = rng.one_in(2).then(|| rng.next() as u32);
                hop.loss_pct = rng.float();
                (hop.rtt_last_ms, hop.rtt_avg_ms, hop.rtt_best_ms) =
                    (rng.opt_float(), rng.opt_float(), rng.opt_float());
                (hop.rtt_worst_ms, hop.rtt_stddev_ms) = (rng.opt_float(), rng.opt_float());
            }
        }
        Body::Health(b) => {
            b.last_successful_run = rng.one_in(2).then(|| Timestamp::from_unix_nanos(rng.next() as i64 / 2));
            (b.uptime_s, b.spool_messages, b.spool_dropped_messages) = (rng.u64(), rng.u64(), rng.u64());
            b.kafka_connected = rng.one_in(2);
            b.instance = rng.one_in(2).then(|| rng.string());
        }
        Body::Bgp(_) | Body::Registry(_) => {}
    }
    m
}

/// Textual variants of an encoded message: each a case the transcoder
/// must read as decode reads it, or decline.
fn textual(json: &str) -> Vec<String> {
    let open = &json[..json.len() - 1];
    let mut out = vec![
        format!("{open},\"unknown\":1}}"),
        format!("{open},\"error\":null}}"),
        format!("{open}}} x"),
        format!("{open}}} \n"),
        format!(" \t{json}"),
        json.replacen("\"schema\":1", "\"schema\":2", 1),
        json.replacen("\"schema\":1", "\"schema\":1.0", 1),
        json.replacen("\"probe_id\"", "\"probe\\u005fid\"", 1),
    ];
    for (from, to) in [
        (":", " : "),
        (",", " , "),
        ("{", "{ "),
        ("[", "[ "),
        ("]", " ]"),
        (":1,", ":1.0,"),
        (":1,", ":1e0,"),
        (":0,", ":-0,"),
        (".", ".000"),
        (".0,", "e400,"),
        (":null", ":nul"),
        (":\"", ":\"\\u0041"),
        ("\"error\":null", "\"error\":{\"message\":\"m\",\"class\":\"timeout\"}"),
        ("\"error\":null", "\"error\":{\"class\":\"new_class\",\"message\":\"m\"}"),
        ("\"answers\":[", "\"answers\":[\"a\","),
        ("\"other_ips\":[", "\"other_ips\":[\"::1\","),
        ("\"hops\":[{", "\"hops\":[{\"ttl\":1,"),
        ("\"kafka_connected\":true", "\"kafka_connected\":true,\"feeds\":[]"),
        ("\"kafka_connected\":true", "\"kafka_connected\":true,\"instance\":null"),
        ("\"location\"", "\"locatio\""),
    ] {
        out.push(json.replacen(from, to, 1));
        out.push(json.replace(from, to));
    }
    // Each key moved to the end of its object's text (another order).
    for key in ["\"target\":", "\"sent\":", "\"answers\":", "\"hops\":", "\"uptime_s\":", "\"probe_type\":"] {
        if let Some(at) = json.find(key) {
            let end = json[at..].find(',').map_or(json.len() - 1, |n| at + n);
            out.push(format!("{}{},{}}}", &json[..at], &json[end + 1..json.len() - 1], &json[at..end]));
        }
    }
    out
}

/// What the reference path writes for `payload`: `Some((lines, bytes))`,
/// or `None` when it refuses the message.
fn reference(payload: &[u8]) -> Option<(usize, Vec<u8>)> {
    let msg = decode(payload).ok()?;
    let mut out = Vec::new();
    let lines = render_message(&msg, &mut out).ok()?;
    Some((lines, out))
}

/// Whether the transcoder took `payload`; fails when it wrote anything the
/// reference path would not have written, or touched `out` when declining.
fn same_as_reference(payload: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(payload) else { return false };
    let mut out = b"before\n".to_vec();
    let got = transcode(text, &mut out);
    let want = reference(payload);
    let Some(lines) = got else {
        assert_eq!(out, b"before\n", "declined, and left the buffer as it was: {text}");
        return false;
    };
    let got = (lines, out.split_off(b"before\n".len()));
    assert_eq!(
        want.as_ref().map(|(n, b)| (*n, String::from_utf8_lossy(b))),
        Some((got.0, String::from_utf8_lossy(&got.1))),
        "transcoded {text}"
    );
    // And render_payload gives the same, whichever path it takes.
    let mut again = Vec::new();
    assert_eq!(render_payload(payload, &mut again).ok(), Some(lines));
    assert_eq!(again, got.1);
    true
}

#[test]
fn agents_messages_of_the_five_kinds_are_transcoded() {
    for kind in [ProbeType::Icmp, ProbeType::Dns, ProbeType::Http, ProbeType::Mtr, ProbeType::Health] {
        let payload = golden(kind).encode().expect("encode");
        assert!(same_as_reference(&payload), "{kind}: the golden message as the agent encodes it is transcoded");
    }
    for kind in [ProbeType::Bgp, ProbeType::Registry] {
        let payload = golden(kind).encode().expect("encode");
        assert!(!same_as_reference(&payload), "{kind} is left to decode and render_message");
        let mut out = Vec::new();
        assert_eq!(render_payload(&payload, &mut out).ok(), reference(&payload).map(|(n, _)| n));
    }
}

#[test]
fn transcode_writes_what_render_message_writes() {
    let mut rng = Rng(21);
    let (mut cases, mut taken) = (0, 0);
    for kind in [ProbeType::Icmp, ProbeType::Dns, ProbeType::Http, ProbeType::Mtr, ProbeType::Health] {
        let base = golden(kind);
        for round in 0..3_000 {
            let msg = vary(&base, &mut rng);
            // A non-finite float cannot be encoded; none is drawn.
            let json = String::from_utf8(msg.encode().expect("encode")).expect("utf-8");
            let mut variants = vec![json.clone()];
            if round % 30 == 0 {
                variants.extend(textual(&json));
            }
            for v in variants {
                cases += 1;
                taken += usize::from(same_as_reference(v.as_bytes()));
            }
        }
    }
    assert!(taken > 6_000 && cases > 30_000, "{taken} of {cases} cases transcoded");
}

/// A message the reference path refuses is never written by the
/// transcoder: render_payload returns the reference path's error and
/// leaves the buffer as it was.
#[test]
fn what_cannot_be_written_is_refused_as_before() {
    let mut msg = golden(ProbeType::Icmp);
    for (probe_id, target) in [("", "t"), ("p", "line\nbreak"), ("p", "ends\\")] {
        msg.probe_id = ProbeId(probe_id.into());
        if let Body::Icmp(b) = &mut msg.body {
            b.target = target.into();
        }
        let payload = msg.encode().expect("encode");
        let want = render_message(&decode(&payload).expect("decodes"), &mut Vec::new()).expect_err("refused");
        let mut out = b"kept".to_vec();
        let err = render_payload(&payload, &mut out).expect_err("refused");
        assert_eq!(out, b"kept");
        assert!(matches!(err, RenderError::Point(_)));
        assert_eq!(err.to_string(), want.to_string());
    }
    let mut out = Vec::new();
    let err = render_payload(b"{\"schema\":1}", &mut out).expect_err("refused");
    assert!(matches!(err, RenderError::Decode(_)) && err.to_string().contains("probe_type"), "{err}");
}
