//! Where a systemd credential is found in `$CREDENTIALS_DIRECTORY`.
//!
//! A unit can pass a credential by name (`LoadCredential=db-password:/path/to/file`), which
//! appears as `$CREDENTIALS_DIRECTORY/db-password`, or pass a whole directory
//! (`LoadCredential=markoff:/etc/markoff/credentials`), whose files appear as
//! `markoff_<file name>`. The packaged units do the latter, so that an operator adds a secret by
//! dropping a file into the directory without editing the unit, and a config that names the
//! credential `db-password` finds it either way.

use std::path::{Path, PathBuf};

/// The id the packaged units give their credentials directory (`LoadCredential=markoff:...`).
pub const PACKAGED_CREDENTIAL_ID: &str = "markoff";

/// The file holding credential `name`: `<dir>/<name>`, else `<dir>/markoff_<name>`; `None`
/// when neither exists.
pub fn credential_path(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        dir.join(name),
        dir.join(format!("{PACKAGED_CREDENTIAL_ID}_{name}")),
    ]
    .into_iter()
    .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_plain_name_then_the_directory_form() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(credential_path(d, "db-password"), None);
        std::fs::write(d.join("markoff_db-password"), "b").unwrap();
        assert_eq!(
            credential_path(d, "db-password"),
            Some(d.join("markoff_db-password"))
        );
        std::fs::write(d.join("db-password"), "a").unwrap();
        assert_eq!(
            credential_path(d, "db-password"),
            Some(d.join("db-password"))
        );
    }
}
