//! InfluxDB stopped for 60 s under a steady produce stream, then started:
//! ingest back-pressures and retries, and afterwards produced == stored with
//! nothing in the DLQ. Batches of 100 lines fill during the outage, so the
//! loop stalls and pauses the partitions, and resumes after it. Its own test
//! binary: it stops the shared InfluxDB and installs the metrics recorder.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::msgs::icmp_seq;
use common::stack::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use netprobe_wire::Topic;
use tokio_util::sync::CancellationToken;

fn stack(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack");
    let status = Command::new(&script).args(args).status().expect("scripts/stack runs");
    assert!(status.success(), "scripts/stack {args:?} failed");
}

/// The sum of a metric over its label sets in the Prometheus text, 0 when absent.
fn metric(handle: &PrometheusHandle, name: &str) -> f64 {
    handle
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with([' ', '{']))
        .filter_map(|rest| rest.rsplit(' ').next())
        .map(|v| v.parse::<f64>().expect("metric value"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_down_for_60s_loses_nothing() {
    let probe_id = unique("e2e-outage");
    let dlq_start = end_offsets("ADMIN", &[Topic::Dlq]);
    let group = fresh_group("outage");
    let metrics = PrometheusBuilder::new().install_recorder().expect("metrics recorder");
    let cancel = CancellationToken::new();
    let ingest = {
        let mut config = ingest_config(group);
        config.ingest.batch_max_lines = 100;
        let c = cancel.clone();
        tokio::spawn(async move { netprobe_ingest::run(config, c, || {}, Box::new(|| {})).await.expect("runs") })
    };
    let producer = producer();
    let start = Instant::now();
    let mut seq = 0u64;
    let mut stopped_at = None;
    let mut restarted = false;
    let mut paused_during_outage = false;
    // 10 messages/s for 80 s: 5 s up, 60 s down, 15 s up again.
    while start.elapsed() < Duration::from_secs(80) {
        produce(&producer, &[icmp_seq(&probe_id, &format!("192.0.2.{}", seq % 12), seq)]).await;
        seq += 1;
        if stopped_at.is_none() && start.elapsed() >= Duration::from_secs(5) {
            stack(&["down", "influx"]);
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some() && !restarted {
            paused_during_outage |= metric(&metrics, "netprobe_ingest_consumption_paused") == 1.0;
        }
        if !restarted && stopped_at.is_some_and(|t| t.elapsed() >= Duration::from_secs(60)) {
            stack(&["up", "influx"]);
            restarted = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !restarted {
        stack(&["up", "influx"]);
    }
    let produced = seq;
    poll("produced == stored after the outage", Duration::from_secs(120), || async {
        (count_points(&probe_id, "icmp", "sent").await == produced).then_some(())
    })
    .await;
    assert!(paused_during_outage, "a full batch behind a stalled write pauses consumption");
    assert_eq!(metric(&metrics, "netprobe_ingest_consumption_paused"), 0.0, "resumed after the outage");
    assert!(metric(&metrics, "netprobe_ingest_write_retries_total") >= 1.0, "writes were retried");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(30), ingest).await.expect("stops in time").expect("no panic");
    let ours = read_dlq(&dlq_start)
        .into_iter()
        .filter(|r| r.key.as_deref().is_some_and(|k| k.starts_with(probe_id.as_bytes())))
        .count();
    assert_eq!(ours, 0, "an outage must not send anything to the DLQ");
}
