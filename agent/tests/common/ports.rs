//! Ports that are certainly closed for as long as the test holds them:
//! unlike binding and dropping a socket, no other process can take them in
//! between.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

/// A TCP port on 127.0.0.1 bound but not listening: a connection to it is
/// refused (RST) until the returned descriptor is dropped.
pub fn closed_tcp() -> (OwnedFd, SocketAddr) {
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    let addr: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).expect("getsockname");
    (fd, SocketAddr::V4(addr.into()))
}

/// A UDP port on 127.0.0.1 held by a socket connected elsewhere: a
/// datagram from anyone else matches no socket, so the kernel answers ICMP
/// port unreachable (ECONNREFUSED on a connected sender).
pub fn closed_udp() -> (std::net::UdpSocket, SocketAddr) {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Port 9 (discard): any fixed peer that is not the prober.
    holder.connect("127.0.0.1:9").expect("connect");
    let addr = holder.local_addr().expect("addr");
    (holder, addr)
}
