//! Error classes of the HTTP probe: socket errors by errno, hyper errors by
//! their source chain.

use std::error::Error as StdError;
use std::io;

use netprobe_wire::{ErrorClass, ProbeError};

/// Class of a socket error (`connect(2)` errno mapped by std).
pub(super) fn io_class(e: &io::Error) -> ErrorClass {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorClass::ConnectionRefused,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable | io::ErrorKind::NetworkDown => {
            ErrorClass::Unreachable
        }
        io::ErrorKind::PermissionDenied => ErrorClass::PermissionDenied,
        io::ErrorKind::TimedOut => ErrorClass::Timeout,
        _ => ErrorClass::Other,
    }
}

/// A hyper error: a socket error keeps its class, anything else (parse
/// errors, a connection closed before the response completed, HTTP/2 stream
/// errors) is `protocol_error`.
pub(super) fn http_error(e: hyper::Error) -> ProbeError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&e);
    let mut class = ErrorClass::ProtocolError;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            class = io_class(io);
            break;
        }
        source = s.source();
    }
    err(class, chain(&e))
}

/// An error and its sources, joined with `: `.
pub(super) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    message
}

pub(super) fn err(class: ErrorClass, message: String) -> ProbeError {
    ProbeError { class, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_map_to_classes() {
        let class = |errno| io_class(&io::Error::from_raw_os_error(errno));
        assert_eq!(class(111), ErrorClass::ConnectionRefused); // ECONNREFUSED
        assert_eq!(class(113), ErrorClass::Unreachable); // EHOSTUNREACH
        assert_eq!(class(101), ErrorClass::Unreachable); // ENETUNREACH
        assert_eq!(class(13), ErrorClass::PermissionDenied); // EACCES
        assert_eq!(class(110), ErrorClass::Timeout); // ETIMEDOUT
    }
}
