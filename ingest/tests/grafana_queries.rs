//! Every query Grafana would run, run against InfluxDB holding a fixture
//! that went through the real pipeline (agent-principal producer -> Kafka
//! topics under a unique prefix -> netprobe-ingest -> a fresh bucket).
//!
//! The queries are read from the committed files: `grafana/dashboards/*.json`
//! (variables, annotations, panels) and
//! `grafana/provisioning/alerting/netprobe-rules.yaml` (read through the
//! generator's `cmd/yaml2json`, so no YAML crate is needed). Grafana's
//! variables are substituted as Grafana does: template variables in the
//! frontend (`${v:json}` a JSON array of the selected values, all options
//! for All; `${v:regex}` one escaped value or `(a|b)`), then the InfluxDB
//! datasource's Flux macros (`v.timeRangeStart`/`v.timeRangeStop` as RFC 3339
//! time literals, `v.windowPeriod` as a duration, `v.defaultBucket` as a
//! string). Alert rules are evaluated like Grafana: the rule's relative time
//! range ending at the fixture's "now", the last value of each series (B),
//! the threshold of C.
//!
//! Fixture (times relative to T0, the test's now, one run per minute over
//! the hour before it): agents graf-fra (Frankfurt) and graf-sin
//! (Singapore) run throughout; graf-gru (Sao Paulo) stops entirely 30
//! minutes before T0. 192.0.2.10 is down from fra and sin for the last 10
//! minutes, 192.0.2.20 from fra only; shop.example.net fails from fra and
//! its certificate expires in 7 days; one BGP origin_change 5 minutes ago.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use common::stack::*;
use netprobe_wire::{decode, Message, Timestamp, Topic};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const FRA: (&str, &str) = ("graf-fra", "Frankfurt, DE");
const SIN: (&str, &str) = ("graf-sin", "Singapore, SG");
const GRU: (&str, &str) = ("graf-gru", "Sao Paulo, BR");
const DOWN_BOTH: &str = "192.0.2.10";
const DOWN_FRA: &str = "192.0.2.20";
const HEALTHY: &str = "192.0.2.30";
const URL_OK: &str = "https://www.example.com/";
const URL_BAD: &str = "https://shop.example.net/";
const NS: i64 = 1_000_000_000;
/// Runs per agent: one a minute for an hour, the last 50 s before T0.
const RUNS: i64 = 60;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden(kind: &str) -> Value {
    let path = repo().join(format!("wire/tests/golden/{kind}.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("golden file")).expect("golden json")
}

fn ts(ns: i64) -> String {
    Timestamp::from_unix_nanos(ns).to_string()
}

/// A wire message: the golden message of `kind` with the agent, time and
/// `fields` replaced; decoded so the fixture is valid wire format.
fn msg(kind: &str, agent: (&str, &str), t_ns: i64, fields: Value) -> Message {
    let mut v = golden(kind);
    v["probe_id"] = json!(agent.0);
    v["location"] = json!(agent.1);
    v["timestamp"] = json!(ts(t_ns));
    for (k, x) in fields.as_object().expect("object") {
        v[k] = x.clone();
    }
    decode(&serde_json::to_vec(&v).expect("json")).unwrap_or_else(|e| panic!("fixture {kind}: {e}: {v}"))
}

fn fixture(t0: i64) -> Vec<Message> {
    let mut out = Vec::new();
    for agent in [FRA, SIN, GRU] {
        let version = if agent == SIN { "0.2.0" } else { "0.1.0" };
        let first = t0 - (RUNS * 60 - 10) * NS;
        out.push(msg(
            "registry",
            agent,
            first,
            json!({"version": version, "hostname": format!("{}.netprobe.example", agent.0), "uptime_s": 60}),
        ));
        for k in 0..RUNS {
            let t = first + k * 60 * NS;
            let age_s = (t0 - t) / NS;
            if agent == GRU && age_s < 30 * 60 {
                break; // graf-gru stopped entirely 30 minutes ago
            }
            out.push(msg("health", agent, t, json!({"uptime_s": 3600 + k * 60, "failures_last_hour": k % 3, "runs_last_hour": 60, "spool_messages": 0, "kafka_connected": true, "last_successful_run": ts(t - NS)})));
            for target in [DOWN_BOTH, DOWN_FRA, HEALTHY] {
                let down = age_s < 10 * 60 && (target == DOWN_BOTH || (target == DOWN_FRA && agent == FRA));
                let rtt = 10.0 + (k % 5) as f64;
                out.push(if down {
                    msg("icmp", agent, t, json!({"target": target, "resolved_ip": target, "sent": 5, "received": 0, "loss_pct": 100.0, "rtt_min_ms": null, "rtt_avg_ms": null, "rtt_median_ms": null, "rtt_max_ms": null, "rtt_stddev_ms": null, "jitter_ms": null, "error": {"class": "timeout", "message": "no reply"}}))
                } else {
                    msg("icmp", agent, t, json!({"target": target, "resolved_ip": target, "sent": 5, "received": 5, "loss_pct": 0.0, "rtt_min_ms": rtt, "rtt_avg_ms": rtt + 1.0, "rtt_median_ms": rtt + 1.0, "rtt_max_ms": rtt + 3.0, "rtt_stddev_ms": 0.5, "jitter_ms": 0.4}))
                });
            }
            let answers = if agent == FRA && age_s < 20 * 60 { json!(["192.0.2.99"]) } else { json!(["192.0.2.80"]) };
            out.push(msg("dns", agent, t, json!({"query_name": "example.com", "answers": answers, "answer_count": 1, "latency_ms": 2.0 + (k % 4) as f64})));
            out.push(msg("dns", agent, t, json!({"query_name": "missing.example.com", "rcode": "NXDOMAIN", "answers": [], "answer_count": 0, "latency_ms": 3.0})));
            out.push(msg("http", agent, t, json!({"url": URL_OK, "cert_not_after": ts(t0 + 90 * 86400 * NS)})));
            let failing = agent == FRA && age_s < 15 * 60 && k % 2 == 0;
            out.push(msg("http", agent, t, json!({"url": URL_BAD, "cert_not_after": ts(t0 + 7 * 86400 * NS), "status_code": if failing { 503 } else { 200 }, "success": !failing})));
            if k % 5 == 0 {
                let hash = if agent == FRA && age_s < 30 * 60 { "bbbbbbbbbbbbbbbb" } else { "aaaaaaaaaaaaaaaa" };
                out.push(msg("mtr", agent, t, json!({"target": DOWN_BOTH, "path_hash": hash})));
            }
        }
    }
    for (event, prefix, age_min, origin) in [
        ("announce", "192.0.2.0/24", 40, 64500),
        ("origin_change", "192.0.2.0/24", 5, 64666),
        ("more_specific", "192.0.2.128/25", 50, 64500),
    ] {
        out.push(msg(
            "bgp",
            FRA,
            t0 - age_min * 60 * NS,
            json!({"event": event, "prefix": prefix, "origin_asn": origin}),
        ));
    }
    out
}

async fn influx(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let token = std::fs::read_to_string(env("NETPROBE_INFLUX_TOKEN_FILE")).expect("token file");
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", env("NETPROBE_INFLUX_URL")))
        .header("Authorization", format!("Token {}", token.trim()));
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(serde_json::to_vec(&b).expect("json"));
    }
    let resp = req.send().await.expect("InfluxDB answers");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert!(status.is_success(), "InfluxDB {path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates a bucket; returns its id.
async fn create_bucket(name: &str) -> String {
    let orgs = influx(reqwest::Method::GET, &format!("/api/v2/orgs?org={}", env("NETPROBE_INFLUX_ORG")), None).await;
    let org_id = orgs["orgs"][0]["id"].as_str().expect("org id").to_owned();
    let b = influx(
        reqwest::Method::POST,
        "/api/v2/buckets",
        Some(json!({"orgID": org_id, "name": name, "retentionRules": []})),
    )
    .await;
    b["id"].as_str().expect("bucket id").to_owned()
}

/// Deletes the test's bucket when dropped, also when the test fails.
struct BucketGuard(String);

impl Drop for BucketGuard {
    fn drop(&mut self) {
        let id = self.0.clone();
        // Its own runtime on its own thread: drop may run while unwinding
        // inside the test's runtime. A failed delete only leaves the bucket.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(influx(reqwest::Method::DELETE, &format!("/api/v2/buckets/{id}"), None));
            }
        })
        .join();
    }
}

/// `scripts/stack topics PREFIX [MODE]` against the stack whose env we
/// run with (its CA is <stack dir>/pki/ca.pem), even when this checkout is
/// another worktree.
fn stack_topics_cmd(prefix: &str, mode: Option<&str>) -> std::io::Result<std::process::ExitStatus> {
    let ca = PathBuf::from(env("NETPROBE_KAFKA_CA"));
    let stack_dir = std::env::var("NETPROBE_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| ca.parent().and_then(|p| p.parent()).expect("CA under <stack dir>/pki").to_owned());
    std::process::Command::new(repo().join("scripts/stack"))
        .args(["topics", prefix])
        .args(mode)
        .env("NETPROBE_STACK_DIR", stack_dir)
        .status()
}

/// Topics and ACLs under the test's prefix; they are deleted again when
/// the guard drops, also when the test fails, so a long-lived stack does
/// not collect 8 topics (48 partitions) per run.
struct TopicsGuard(String);

impl TopicsGuard {
    fn create(prefix: &str) -> Self {
        let status = stack_topics_cmd(prefix, None).expect("run scripts/stack topics");
        assert!(status.success(), "scripts/stack topics {prefix} failed");
        TopicsGuard(prefix.to_owned())
    }
}

impl Drop for TopicsGuard {
    fn drop(&mut self) {
        // A failed delete only leaves the topics behind.
        let _ = stack_topics_cmd(&self.0, Some("--delete"));
    }
}

/// Grafana's regex escaping of a variable value (`escapeRegex`).
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\^$*+?.()|[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Substitutes template variables (`${name:json}`, `${name:regex}`).
fn template(q: &str, vars: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = q.to_owned();
    for (name, values) in vars {
        out = out.replace(&format!("${{{name}:json}}"), &serde_json::to_string(values).expect("json"));
        let regex = if values.len() == 1 {
            regex_escape(&values[0])
        } else {
            format!("({})", values.iter().map(|v| regex_escape(v)).collect::<Vec<_>>().join("|"))
        };
        out = out.replace(&format!("${{{name}:regex}}"), &regex);
    }
    assert!(!out.contains("${"), "unsubstituted variable in\n{out}");
    out
}

/// The InfluxDB datasource's Flux macros.
fn macros(q: &str, bucket: &str, start_ns: i64, stop_ns: i64, window: &str) -> String {
    q.replace("v.timeRangeStart", &ts(start_ns))
        .replace("v.timeRangeStop", &ts(stop_ns))
        .replace("v.windowPeriod", window)
        .replace("v.defaultBucket", &format!("{bucket:?}"))
}

type Row = HashMap<String, String>;

fn num(r: &Row, col: &str) -> f64 {
    r.get(col)
        .unwrap_or_else(|| panic!("no column {col} in {r:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{col} not a number in {r:?}"))
}

/// Plausible range of a value shown with a Grafana unit.
fn plausible(unit: &str, v: f64) -> bool {
    v.is_finite()
        && match unit {
            "percent" => (0.0..=100.0).contains(&v),
            "ms" => (0.0..60_000.0).contains(&v),
            "s" => (0.0..=8.0 * 86400.0).contains(&v),
            "d" => (-1.0..400.0).contains(&v),
            _ => (0.0..1e6).contains(&v),
        }
}

struct Checked {
    queries: usize,
    rows: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_query_runs_on_pipeline_data() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
    let prefix = format!("{}.", unique("graf"));
    let bucket = unique("netprobe-grafana");
    let _topics_guard = TopicsGuard::create(&prefix);
    let _bucket_guard = BucketGuard(create_bucket(&bucket).await);

    let t0 = Timestamp::now().unix_nanos().expect("now") / NS * NS;
    let msgs = fixture(t0);

    // Produce with the agent principal to the prefixed topics.
    let producer = producer();
    for m in &msgs {
        let topic = Topic::for_probe_type(m.probe_type()).name(&prefix);
        produce_raw(&producer, &topic, m.key().as_bytes(), &m.encode().expect("encode")).await;
    }

    // Ingest (library, the binary's code path) into the fresh bucket.
    let mut config = ingest_config(unique("netprobe-ingest-test-grafana"));
    config.kafka.topic_prefix = prefix.clone();
    config.influx.bucket = bucket.clone();
    config.influx.token_file = Some(PathBuf::from(env("NETPROBE_INFLUX_TOKEN_FILE")));
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let ingest = tokio::spawn(async move { netprobe_ingest::run(config, c, || {}, Box::new(|| {})).await });

    // Wait until every message's points are in (one row per message of a
    // field every message has; mtr_path/mtr_hop counted by message).
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for m in &msgs {
        *want.entry(m.probe_type().to_string()).or_default() += 1;
    }
    let field_of = |kind: &str| match kind {
        "icmp" => ("icmp", "loss_pct"),
        "dns" => ("dns", "answer_count"),
        "http" => ("http", "success"),
        "mtr" => ("mtr_path", "hop_count"),
        "bgp" => ("bgp", "source"),
        "registry" => ("agent_registry", "version"),
        _ => ("probe_health", "uptime_s"),
    };
    poll("the fixture lands in InfluxDB", Duration::from_secs(120), || {
        let want = want.clone();
        let bucket = bucket.clone();
        async move {
            for (kind, n) in &want {
                let (m, f) = field_of(kind);
                let rows = flux(&format!(
                    r#"from(bucket: "{bucket}") |> range(start: 0) |> filter(fn: (r) => r._measurement == "{m}" and r._field == "{f}") |> group() |> count()"#
                ))
                .await;
                let got = rows.first().map_or(0, |r| num(r, "_value") as usize);
                if got < *n {
                    return None;
                }
                assert_eq!(got, *n, "{kind}: more points than messages");
            }
            Some(())
        }
    })
    .await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), ingest)
        .await
        .expect("ingest stops")
        .expect("no panic")
        .expect("ingest ran");

    let mut checked = Checked { queries: 0, rows: 0 };
    check_dashboards(&bucket, t0, &mut checked).await;
    check_alert_rules(&bucket, t0, &mut checked).await;
    println!("grafana queries executed and checked: {} ({} rows)", checked.queries, checked.rows);
    assert!(checked.queries >= 60, "only {} queries", checked.queries);
}

/// Runs one query; panics with the query on failure.
async fn run(q: &str, what: &str, checked: &mut Checked) -> Vec<Row> {
    checked.queries += 1;
    let rows = flux(q).await;
    checked.rows += rows.len();
    assert!(rows.iter().all(|r| r.get("result").is_some_and(|v| v != "error")), "{what}: error rows\n{q}");
    rows
}

async fn check_dashboards(bucket: &str, t0: i64, checked: &mut Checked) {
    let start = t0 - 6 * 3600 * NS; // the dashboards' default range, now-6h
    let dir = repo().join("grafana/dashboards");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("dashboards dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    assert_eq!(files.len(), 8, "dashboards in {}", dir.display());
    for path in files {
        let d: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("dashboard json");
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        let sub = |q: &str, vars: &BTreeMap<String, Vec<String>>| macros(&template(q, vars), bucket, start, t0, "1m0s");

        // Variables in order, each seeing the ones before it at All.
        let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in d["templating"]["list"].as_array().expect("variables") {
            let vname = v["name"].as_str().expect("name").to_owned();
            let q = v["query"].as_str().expect("variable query");
            let rows = run(&sub(q, &all), &format!("{name} variable {vname}"), checked).await;
            let mut values: Vec<String> = rows.iter().map(|r| r["_value"].clone()).collect();
            values.sort();
            values.dedup();
            let expect: &[&str] = match vname.as_str() {
                "location" => &[FRA.1, GRU.1, SIN.1],
                "probe_id" => &[FRA.0, GRU.0, SIN.0],
                _ => &[],
            };
            // BGP events come from graf-fra only; every other measurement
            // has all three agents.
            let expect: Vec<&str> = if name == "bgp.json" {
                expect.iter().copied().filter(|x| *x == FRA.0 || *x == FRA.1).collect()
            } else {
                expect.to_vec()
            };
            // Targets: what the fixture sent for each family.
            let expect: Vec<&str> = match (name.as_str(), vname.as_str()) {
                ("icmp.json" | "overview.json", "target") => vec![DOWN_BOTH, DOWN_FRA, HEALTHY],
                ("http.json", "target") => vec![URL_OK, URL_BAD],
                ("dns.json", "target") => vec!["example.com", "missing.example.com"],
                ("mtr.json", "target") => vec![DOWN_BOTH],
                ("bgp.json", "target") => vec!["192.0.2.0/24", "192.0.2.128/25"],
                _ => expect,
            };
            if !expect.is_empty() {
                let mut e: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
                e.sort();
                assert_eq!(values, e, "{name}: variable {vname}");
            }
            assert!(!values.is_empty(), "{name}: variable {vname} has no values");
            // A single-select variable without All takes its first value.
            if v["multi"] == json!(false) {
                values.truncate(1);
            }
            all.insert(vname, values);
        }

        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            let q = a["target"]["query"].as_str().expect("annotation query");
            let rows = run(&sub(q, &all), &format!("{name} annotation"), checked).await;
            if name == "mtr.json" {
                // The one path change: graf-fra, 30 minutes before T0.
                let changes: Vec<_> = rows.iter().map(|r| (r["probe_id"].as_str(), r["path_hash"].as_str())).collect();
                assert_eq!(changes, vec![(FRA.0, "bbbbbbbbbbbbbbbb")], "{name}: path changes");
                assert!(rows[0]["text"].contains("path changed"), "{name}: annotation text {:?}", rows[0]);
            }
        }

        for p in d["panels"].as_array().expect("panels") {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("short").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                let q = t["query"].as_str().expect("panel query");
                // A repeated panel runs once per value of its variable.
                let runs: Vec<BTreeMap<String, Vec<String>>> = match p["repeat"].as_str() {
                    Some(rv) => all[rv]
                        .iter()
                        .map(|val| {
                            let mut vars = all.clone();
                            vars.insert(rv.to_owned(), vec![val.clone()]);
                            vars
                        })
                        .collect(),
                    None => vec![all.clone()],
                };
                for vars in runs {
                    let what = format!("{name} panel {title:?}");
                    let rows = run(&sub(q, &vars), &what, checked).await;
                    assert!(!rows.is_empty(), "{what}: no rows\n{}", sub(q, &vars));
                    check_panel(&name, &title, &unit, &rows);
                    // With one agent selected, only that agent's rows come back.
                    // With one agent selected (the last one with rows), only
                    // that agent's rows come back.
                    if let Some(id) =
                        rows.iter().rev().find_map(|r| r.get("probe_id")).filter(|_| vars.contains_key("probe_id"))
                    {
                        let mut one = vars.clone();
                        one.insert("probe_id".into(), vec![id.clone()]);
                        let some = run(&sub(q, &one), &format!("{what} (probe_id={id})"), checked).await;
                        assert!(!some.is_empty(), "{what}: no rows for {id}");
                        assert!(some.iter().all(|r| &r["probe_id"] == id), "{what}: probe_id filter leaks: {some:?}");
                        assert!(
                            some.len() < rows.len() || rows.iter().all(|r| &r["probe_id"] == id),
                            "{what}: filter on {id} removed nothing"
                        );
                    }
                }
            }
        }
    }
}

/// Columns and plausible values of one panel's rows, plus the facts of
/// the fixture the panels must show.
fn check_panel(dash: &str, title: &str, unit: &str, rows: &[Row]) {
    let what = format!("{dash} panel {title:?}");
    for r in rows {
        if let Some(v) = r.get("_value").filter(|v| !v.is_empty()) {
            if let Ok(x) = v.parse::<f64>() {
                assert!(plausible(unit, x), "{what}: implausible {x} {unit} in {r:?}");
            }
        }
    }
    let cols: BTreeSet<&str> = rows[0].keys().map(String::as_str).collect();
    let need: &[&str] = match (dash, title) {
        ("icmp.json", "Latest run per agent and target") => &["probe_id", "target", "loss_pct", "rtt_median_ms"],
        ("dns.json", "Latest answer per agent, resolver and name") => {
            &["probe_id", "resolver", "rcode", "latency_ms", "answers"]
        }
        ("dns.json", "Answer changes") => &["probe_id", "resolver", "query_name", "changes", "answers"],
        ("dns.json", "Response codes") => &["rcode", "_value", "_time"],
        ("http.json", "Status codes") => &["status", "_value", "_time"],
        ("http.json", "Days to certificate expiry") => &["url", "days_left", "not_after"],
        ("mtr.json", "Hops of the latest run") => &["probe_id", "hop", "loss_pct", "ip"],
        ("bgp.json", "Possible hijacks: origin_change, more_specific, rpki_invalid") => {
            &["prefix", "event", "origin_asn", "as_path"]
        }
        ("registry.json", "Agents") => &["probe_id", "location", "version", "uptime_s", "available_metrics"],
        ("registry.json", "Versions") => &["version", "agents"],
        ("health.json", "Heartbeat age") => &["probe_id", "_value", "_time"],
        ("overview.json", "Worst loss: targets x agents") => &["target", FRA.0, SIN.0, GRU.0],
        (_, t) if t.starts_with("Phases") => &["_time", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"],
        _ => &["_value"],
    };
    for c in need {
        assert!(cols.contains(c), "{what}: no column {c} in {cols:?}");
    }
    let by = |col: &str, val: &str| {
        rows.iter()
            .find(|r| r.get(col).is_some_and(|v| v == val))
            .unwrap_or_else(|| panic!("{what}: no row with {col}={val}: {rows:?}"))
    };
    match (dash, title) {
        ("health.json", "Heartbeat age") | ("overview.json", "Silent agents") => {
            let gru = num(by("probe_id", GRU.0), "_value");
            assert!((1800.0..1900.0).contains(&gru), "{what}: {} age {gru} s", GRU.0);
            if dash == "health.json" {
                let fra = num(by("probe_id", FRA.0), "_value");
                assert!((49.0..=51.0).contains(&fra), "{what}: {} age {fra} s", FRA.0);
            } else {
                assert_eq!(rows.len(), 1, "{what}: only {} is silent: {rows:?}", GRU.0);
            }
        }
        ("overview.json", "Agents silent") => assert_eq!(num(&rows[0], "_value"), 1.0, "{what}"),
        ("overview.json", "Agents heartbeating") => assert_eq!(num(&rows[0], "_value"), 2.0, "{what}"),
        ("overview.json", "Worst loss: targets x agents") => {
            let r = by("target", DOWN_FRA);
            assert_eq!((num(r, FRA.0), num(r, SIN.0)), (100.0, 0.0), "{what}: {r:?}");
            assert_eq!(num(by("target", HEALTHY), FRA.0), 0.0, "{what}");
        }
        ("registry.json", "Agents registered") => assert_eq!(num(&rows[0], "_value"), 3.0, "{what}"),
        ("registry.json", "Agents") => assert_eq!(by("probe_id", SIN.0)["version"], "0.2.0", "{what}"),
        ("http.json", "Days to certificate expiry") => {
            let bad = num(by("url", URL_BAD), "days_left");
            assert!((6.9..=7.0).contains(&bad), "{what}: {bad} days");
        }
        ("dns.json", "Answer changes") => {
            let changes = |id: &str| {
                num(
                    rows.iter().find(|r| r["probe_id"] == id && r["query_name"] == "example.com").expect("row"),
                    "changes",
                )
            };
            assert_eq!((changes(FRA.0), changes(SIN.0)), (1.0, 0.0), "{what}: {rows:?}");
        }
        ("bgp.json", "Possible hijacks: origin_change, more_specific, rpki_invalid") => {
            let events: BTreeSet<&str> = rows.iter().map(|r| r["event"].as_str()).collect();
            assert_eq!(events, BTreeSet::from(["origin_change", "more_specific"]), "{what}");
        }
        ("icmp.json", "Packet loss") => {
            assert!(
                rows.iter().any(|r| r["target"] == DOWN_FRA && r["probe_id"] == FRA.0 && num(r, "_value") == 100.0),
                "{what}"
            );
        }
        _ => {}
    }
}

/// Evaluates every provisioned rule like Grafana: query A over the rule's
/// relative range ending at T0, the last value per series, C's threshold.
async fn check_alert_rules(bucket: &str, t0: i64, checked: &mut Checked) {
    let out = std::process::Command::new("go")
        .args(["run", "./cmd/yaml2json", "../provisioning/alerting/netprobe-rules.yaml"])
        .current_dir(repo().join("grafana/generator"))
        .output()
        .expect("go run ./cmd/yaml2json (Go is needed for the Grafana tests)");
    assert!(out.status.success(), "yaml2json: {}", String::from_utf8_lossy(&out.stderr));
    let file: Value = serde_json::from_slice(&out.stdout).expect("rules json");
    let rules = file["groups"][0]["rules"].as_array().expect("rules");
    let mut firing_by_rule: BTreeMap<String, BTreeSet<Vec<(String, String)>>> = BTreeMap::new();
    for rule in rules {
        let uid = rule["uid"].as_str().expect("uid").to_owned();
        let data = rule["data"].as_array().expect("data");
        let a = data.iter().find(|q| q["refId"] == "A").expect("query A");
        let c = data.iter().find(|q| q["refId"] == json!(rule["condition"])).expect("condition query");
        let from_s = a["relativeTimeRange"]["from"].as_i64().expect("from");
        let q = macros(a["model"]["query"].as_str().expect("query"), bucket, t0 - from_s * NS, t0, "1s");
        let rows = run(&q, &format!("rule {uid}"), checked).await;
        let eval = &c["model"]["conditions"][0]["evaluator"];
        let (op, threshold) = (eval["type"].as_str().expect("type"), eval["params"][0].as_f64().expect("param"));
        // Last value per series (table).
        let mut last: BTreeMap<String, &Row> = BTreeMap::new();
        for r in &rows {
            last.insert(r["table"].clone(), r);
        }
        if uid == "netprobe-target-down-multi-vantage" {
            // The target down from one location is counted, and stays below the threshold.
            let one = last.values().find(|r| r["target"] == DOWN_FRA).expect("192.0.2.20 counted");
            assert_eq!(num(one, "_value"), 1.0, "rule {uid}: {one:?}");
        }
        let mut firing = BTreeSet::new();
        for r in last.values() {
            let v = num(r, "_value");
            let fires = match op {
                "gt" => v > threshold,
                "lt" => v < threshold,
                other => panic!("rule {uid}: evaluator {other}"),
            };
            if fires {
                let labels: Vec<(String, String)> = r
                    .iter()
                    .filter(|(k, _)| !k.starts_with('_') && !["result", "table", ""].contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                firing.insert(labels);
            }
        }
        firing_by_rule.insert(uid, firing);
    }
    let l = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let want: BTreeMap<&str, BTreeSet<Vec<(String, String)>>> = BTreeMap::from([
        // The agent that stopped entirely fires; the live ones do not.
        ("netprobe-missing-heartbeat", BTreeSet::from([l(&[("location", GRU.1), ("probe_id", GRU.0)])])),
        (
            "netprobe-icmp-loss",
            BTreeSet::from([
                l(&[("location", FRA.1), ("probe_id", FRA.0), ("target", DOWN_BOTH)]),
                l(&[("location", SIN.1), ("probe_id", SIN.0), ("target", DOWN_BOTH)]),
                l(&[("location", FRA.1), ("probe_id", FRA.0), ("target", DOWN_FRA)]),
            ]),
        ),
        // Down from two locations fires; down from one does not.
        ("netprobe-target-down-multi-vantage", BTreeSet::from([l(&[("target", DOWN_BOTH)])])),
        (
            "netprobe-http-success-ratio",
            BTreeSet::from([l(&[("location", FRA.1), ("probe_id", FRA.0), ("url", URL_BAD)])]),
        ),
        (
            "netprobe-cert-expiry",
            BTreeSet::from([
                // graf-gru saw the certificate 31 minutes ago, within the hour.
                l(&[("location", FRA.1), ("probe_id", FRA.0), ("url", URL_BAD)]),
                l(&[("location", GRU.1), ("probe_id", GRU.0), ("url", URL_BAD)]),
                l(&[("location", SIN.1), ("probe_id", SIN.0), ("url", URL_BAD)]),
            ]),
        ),
        ("netprobe-bgp-hijack-event", BTreeSet::from([l(&[("event", "origin_change"), ("prefix", "192.0.2.0/24")])])),
    ]);
    let got: BTreeMap<&str, BTreeSet<Vec<(String, String)>>> =
        firing_by_rule.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_eq!(got, want, "firing alert instances");
}
