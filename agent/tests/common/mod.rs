//! Helpers shared by the agent tests.
#![allow(dead_code)]

pub mod config;
pub mod gobgp;
pub mod mrt;
pub mod netns;
pub mod ports;
pub mod targets;
