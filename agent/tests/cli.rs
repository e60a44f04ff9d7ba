//! The binary: `--help`/`--version`, `--health-check` against real local
//! targets (exit status, one wire JSON object per line, `--only`), and a
//! bad config named by file, line and key.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use netprobe_wire::{decode, Body, ErrorClass, ProbeType};

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netprobe-agent")).args(args).output().expect("binary runs")
}

fn run(arg: &str) -> String {
    let out = agent(&[arg]);
    assert!(out.status.success(), "netprobe-agent {arg} exited {:?}", out.status);
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn answers_version_and_help() {
    assert_eq!(run("--version").trim(), concat!("netprobe-agent ", env!("CARGO_PKG_VERSION")));
    let help = run("--help");
    assert!(help.contains("Usage: netprobe-agent") && help.contains("--config <FILE>"), "{help}");
    assert!(help.contains("--health-check") && help.contains("--only <TYPES>"), "{help}");
}

/// A config with no reachable Kafka (health checks need none) and `probes`.
fn write_config(dir: &Path, probes: &str) -> String {
    let path = dir.join("agent.toml");
    let text = format!(
        "[agent]\nprobe_id = \"cli-test\"\nlocation = \"Loopback, LO\"\n\n\
         [kafka]\nbrokers = [\"127.0.0.1:1\"]\nusername = \"agent\"\nca_file = \"/nonexistent/ca.pem\"\n\n{probes}"
    );
    std::fs::write(&path, text).expect("config");
    path.to_str().expect("utf-8").to_owned()
}

fn health_check(config: &str, only: Option<&str>) -> (bool, Vec<netprobe_wire::Message>) {
    let mut args = vec!["--config", config, "--health-check"];
    if let Some(o) = only {
        args.extend(["--only", o]);
    }
    let out = agent(&args);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let messages = stdout.lines().map(|l| decode(l.as_bytes()).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    (out.status.success(), messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_runs_every_probe_once_and_fails_when_one_fails() {
    let dns = common::targets::start_dns().await;
    let http = common::targets::start_http().await;
    let (_held, closed) = common::ports::closed_tcp();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = format!(
        "[[icmp]]\ntarget = \"127.0.0.1\"\ninterval = \"10s\"\ncount = 2\npacket_interval = \"100ms\"\n\n\
         [[dns]]\nresolver = \"{}\"\nquery_name = \"www.{}\"\nrecord_type = \"A\"\ninterval = \"10s\"\n\n\
         [[http]]\nurl = \"http://{http}/\"\ninterval = \"10s\"\n",
        dns.addr,
        common::targets::ZONE
    );
    let config = write_config(dir.path(), &good);
    let (ok, messages) = tokio::task::spawn_blocking(move || health_check(&config, None)).await.expect("run");
    assert!(ok, "every probe succeeded: {messages:?}");
    let kinds: Vec<_> = messages.iter().map(|m| m.probe_type()).collect();
    assert_eq!(kinds, [ProbeType::Icmp, ProbeType::Dns, ProbeType::Http]);
    assert!(messages.iter().all(|m| m.probe_id.as_str() == "cli-test"));

    let config = write_config(dir.path(), &good);
    let (ok, messages) = tokio::task::spawn_blocking(move || health_check(&config, Some("icmp"))).await.expect("run");
    assert!(ok);
    assert_eq!(messages.len(), 1, "--only icmp: {messages:?}");

    let config =
        write_config(dir.path(), &format!("{good}\n[[http]]\nurl = \"http://{closed}/\"\ninterval = \"10s\"\n"));
    let (ok, messages) = tokio::task::spawn_blocking(move || health_check(&config, None)).await.expect("run");
    assert!(!ok, "a refused connection fails the health check");
    assert_eq!(messages.len(), 4, "the failed probe is printed too");
    let Body::Http(failed) = &messages[3].body else { panic!("http last: {messages:?}") };
    assert_eq!(failed.error.as_ref().map(|e| e.class), Some(ErrorClass::ConnectionRefused), "{failed:?}");
}

#[test]
fn bad_config_names_file_line_and_key_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "[[icmp]]\ntarget = \"127.0.0.1\"\ninterval = \"10s\"\ncuont = 3\n");
    let out = agent(&["--config", &config, "--health-check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("agent.toml") && stderr.contains("line 13") && stderr.contains("cuont"), "{stderr}");

    let out = agent(&["--config", &config, "--only", "smtp"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown probe type"), "clap names the bad type");
}
