//! Running as a service: supervision, backoff, systemd protocol, logging, metrics, status.
//!
//! Owns: process-level concerns shared by every component. Does not own: any data path.

pub mod backoff;
pub mod exposition;
pub mod logging;
pub mod metrics;
pub mod status;
pub mod supervisor;
pub mod systemd;
