//! The BGP monitor (issue #11): its feeds. The core helper owns this file;
//! this branch only declares the live sources.

pub mod bmp;
pub mod feed;
pub mod ris_live;
