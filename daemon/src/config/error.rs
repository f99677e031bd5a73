//! One problem found in a config file: the error every section's validation reports.
//!
//! Owns: [`ConfigError`]. Every `config.rs` of a component imports it from here (not through
//! `crate::config`, which imports those sections), so the sections stay leaves of the module
//! graph.

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path (`store.flush_interval`); empty for the document itself.
    pub path: String,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}
