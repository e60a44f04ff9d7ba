//! The BGP monitor fed by MRT files: a scripted story written with
//! bgpkit-parser's encoder into a polled directory (gzip, bzip2, raw, one
//! file truncated) goes through the agent's real path (config, MRT source,
//! state machine) and yields exactly the events worked out by hand.

mod common;

use std::time::Duration;

use common::mrt::{check_story_fields, owned, receive_story, story_config, summary, write_story};
use netprobe_agent::probe::bgp::BgpRuntime;
use netprobe_wire::ProbeId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_scripted_story_yields_exactly_its_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("rrc00");
    std::fs::create_dir(&dir).expect("mkdir");
    let t0 = 1_764_770_400.0;
    let expected = owned(&write_story(&dir, t0));
    let config = story_config(tmp.path(), &format!("source = \"mrt:{}\"\npoll_interval = \"1h\"", dir.display()));
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    let mut runtime =
        BgpRuntime::start(config.bgp.clone(), &ProbeId("pop-test".into()), "Test", tx, &cancel).expect("starts");

    // The story ends with peer 5's first announcement.
    let messages = receive_story(&mut rx, &expected, Duration::from_secs(60)).await;
    check_story_fields(&messages);

    // The truncated record was counted, not fatal: the last file was read.
    let status = runtime.feed_status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].name, format!("mrt {}", dir.display()));
    assert_eq!((status[0].malformed, status[0].messages, status[0].live), (1, 20, true));
    runtime.stop();
}

#[tokio::test]
async fn a_single_truncated_file_is_counted_and_the_feed_ends_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = common::mrt::encode(&[common::mrt::update(1.0e9, 1, "192.0.2.0/24", Some(&[65001, 3356, 64500]))]);
    let mut bytes = good.clone();
    bytes.extend_from_slice(&good[..good.len() / 2]);
    let file = tmp.path().join("updates.gz");
    common::mrt::write(&file, &bytes);
    // Garbage after gzip: a second, broken gzip member.
    let mut raw = std::fs::read(&file).expect("read");
    raw.extend_from_slice(b"\x1f\x8b\x08\x00garbage");
    std::fs::write(&file, raw).expect("write");
    let config = story_config(tmp.path(), &format!("source = \"mrt:{}\"\npoll_interval = \"1h\"", file.display()));
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let mut runtime = BgpRuntime::start(config.bgp, &ProbeId("p".into()), "l", tx, &cancel).expect("starts");
    let msg = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("in time").expect("event");
    assert_eq!(summary(&msg), ("announce".into(), "192.0.2.0/24".into(), 1, Some(64500)));
    // The source ends after the file: the monitor ends, the channel closes.
    let end = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("closes in time");
    assert!(end.is_none(), "{end:?}");
    let status = runtime.feed_status();
    assert_eq!((status[0].messages, status[0].malformed, status[0].live), (1, 1, false));
}
