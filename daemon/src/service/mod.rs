//! Running as a service: supervision, backoff, systemd protocol, logging, metrics.
//!
//! Owns: process-level concerns shared by every component. Does not own: any data path.

pub mod backoff;
pub mod exposition;
pub mod logging;
pub mod metrics;
pub mod supervisor;
pub mod systemd;
