//! The binary answers `--help` and `--version`.

use std::process::Command;

fn run(arg: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netprobe-replay")).arg(arg).output().expect("binary runs");
    assert!(out.status.success(), "netprobe-replay {arg} exited {:?}", out.status);
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn answers_version_and_help() {
    assert_eq!(run("--version").trim(), concat!("netprobe-replay ", env!("CARGO_PKG_VERSION")));
    let help = run("--help");
    assert!(help.contains("Usage: netprobe-replay") && help.contains("--config <FILE>"), "{help}");
}
