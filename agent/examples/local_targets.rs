//! Local probe targets for the demo: an authoritative DNS server for
//! `demo.netprobe.test.` and an HTTP server on 127.0.0.1. Prints
//! `dns=IP:PORT http=IP:PORT` on one line, then serves until killed.

#[path = "../tests/common/targets.rs"]
mod targets;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dns = targets::start_dns().await;
    let http = targets::start_http().await;
    println!("dns={} http={}", dns.addr, http);
    std::future::pending::<()>().await;
}
