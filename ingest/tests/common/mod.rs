//! Shared test helpers.
pub mod goparse;
pub mod msgs;
pub mod stack;
