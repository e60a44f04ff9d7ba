//! The BGP monitor (`[[bgp]]` tables): watches prefixes in a stream of route
//! updates from RIPE RIS Live, MRT files or BMP, and publishes events
//! (hijacks, more-specifics, path changes, flaps, visibility, RPKI) as `bgp`
//! messages on `bgp.updates`. See `docs/bgp.md`.
//!
//! Unlike the other probe types BGP is a stream, not a periodic run: the
//! agent starts one monitor task per distinct source next to the scheduler
//! ([`BgpRuntime`]); each source sends [`feed::FeedElem`]s to it, the pure
//! state machine ([`state::Monitor`]) classifies them, and the events go
//! through the same publisher and spool as every measurement.

pub mod feed;
pub mod rpki;
pub mod state;
