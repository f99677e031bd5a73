//! Login rate limiting: failed logins counted per client address and per account, with a wait
//! that doubles after each failure past a free allowance; the rules are shared with the LAN page
//! and tested in `markoff_proto::web_security`.
//!
//! Owns: nothing of its own. Does not own: checking passwords (`auth`) or finding the client's
//! address (`mod.rs`).
//!
//! The counters live in the process: a restart forgets them, and several `serve` processes
//! behind one address each count on their own (docs/central-web.md, "Login rate limiting").

pub(crate) use markoff_proto::web_security::LoginLimiter;
pub use markoff_proto::web_security::LoginStats;
