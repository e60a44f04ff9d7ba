//! Against the real local InfluxDB (`scripts/stack up`): a point written with
//! ingest's write-only token reads back through Flux with the all-access
//! token, and the write-only token cannot read.

mod common;

use std::time::{Duration, Instant};

use common::stack::env;

const DEADLINE: Duration = Duration::from_secs(30);

fn token(var: &str) -> String {
    let path = env(var);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{var}={path}: {e}")).trim().to_owned()
}

async fn flux(client: &reqwest::Client, token: &str, query: &str) -> reqwest::Response {
    client
        .post(format!("{}/api/v2/query?org={}", env("NETPROBE_INFLUX_URL"), env("NETPROBE_INFLUX_ORG")))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", "application/vnd.flux")
        .header("Accept", "application/csv")
        .body(query.to_owned())
        .send()
        .await
        .expect("InfluxDB answers queries")
}

#[tokio::test]
async fn write_token_writes_and_all_access_token_reads_back() {
    let client = reqwest::Client::new();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let run = format!("stack-test-{}-{nanos}", std::process::id());
    let line = format!("stack_test,run={run} rtt_avg_ms=12.5,sent=5i,note=\"a \\\"quoted\\\" value\" {nanos}");
    let write = client
        .post(format!(
            "{}/api/v2/write?org={}&bucket={}&precision=ns",
            env("NETPROBE_INFLUX_URL"),
            env("NETPROBE_INFLUX_ORG"),
            env("NETPROBE_INFLUX_BUCKET")
        ))
        .header("Authorization", format!("Token {}", token("NETPROBE_INFLUX_WRITE_TOKEN_FILE")))
        .body(line)
        .send()
        .await
        .expect("InfluxDB answers writes");
    assert_eq!(write.status(), 204, "write refused: {}", write.text().await.unwrap_or_default());

    let query = format!(
        r#"from(bucket: "{}") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "stack_test" and r.run == "{run}") |> keep(columns: ["_field", "_value"])"#,
        env("NETPROBE_INFLUX_BUCKET")
    );
    let all_access = token("NETPROBE_INFLUX_TOKEN_FILE");
    let start = Instant::now();
    let csv = loop {
        let resp = flux(&client, &all_access, &query).await;
        assert_eq!(resp.status(), 200, "query refused");
        let csv = resp.text().await.expect("body");
        if csv.contains("rtt_avg_ms") && csv.contains("sent") && csv.contains("note") {
            break csv;
        }
        assert!(start.elapsed() < DEADLINE, "point not queryable within {DEADLINE:?}; last answer:\n{csv}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Annotated CSV: a header row per table, then rows (no commas in values here).
    let mut fields = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for row in csv.lines().map(|l| l.trim_end().split(',').map(str::to_owned).collect::<Vec<_>>()) {
        if row.iter().any(|c| c == "_field") {
            columns = row;
        } else if let (Some(f), Some(v)) = (
            columns.iter().position(|c| c == "_field").and_then(|i| row.get(i)),
            columns.iter().position(|c| c == "_value").and_then(|i| row.get(i)),
        ) {
            fields.push((f.clone(), v.clone()));
        }
    }
    assert!(fields.contains(&("rtt_avg_ms".into(), "12.5".into())), "{fields:?}");
    assert!(fields.contains(&("sent".into(), "5".into())), "{fields:?}");
    assert!(fields.contains(&("note".into(), "\"a \"\"quoted\"\" value\"".into())), "{fields:?}");

    let denied = flux(&client, &token("NETPROBE_INFLUX_WRITE_TOKEN_FILE"), &query).await;
    assert!(denied.status().is_client_error(), "write-only token could query: {}", denied.status());
}
