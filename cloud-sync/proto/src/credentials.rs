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

/// Why a credential could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// `$CREDENTIALS_DIRECTORY` is not set: not started by systemd with `LoadCredential=`.
    #[error(
        "credential {name} requested but $CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)"
    )]
    NoDirectory {
        /// The credential.
        name: String,
    },
    /// No such credential among those systemd passed.
    #[error(
        "credential {name} is not in $CREDENTIALS_DIRECTORY ({dir}): with the packaged unit, put it in {packaged_dir}/{name} (mode 0600)"
    )]
    Missing {
        /// The credential.
        name: String,
        /// `$CREDENTIALS_DIRECTORY`.
        dir: String,
        /// The directory the packaged unit loads its credentials from.
        packaged_dir: &'static str,
    },
    /// The file could not be read.
    #[error("cannot read credential file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The first line is empty.
    #[error("credential {name} is empty")]
    Empty {
        /// The credential.
        name: String,
    },
}

/// The file of credential `name` in `dir` (`$CREDENTIALS_DIRECTORY`; `None` when it is not
/// set), as [`credential_path`] finds it. `packaged_dir` is where the packaged unit loads its
/// credentials from, named in the error when the credential is missing.
///
/// # Errors
/// [`CredentialError::NoDirectory`], [`CredentialError::Missing`].
pub fn locate_credential(
    dir: Option<&Path>,
    name: &str,
    packaged_dir: &'static str,
) -> Result<PathBuf, CredentialError> {
    let dir = dir.ok_or_else(|| CredentialError::NoDirectory {
        name: name.to_owned(),
    })?;
    credential_path(dir, name).ok_or_else(|| CredentialError::Missing {
        name: name.to_owned(),
        dir: dir.display().to_string(),
        packaged_dir,
    })
}

/// Reads credential `name` from `dir` ([`locate_credential`]): the first line of its file,
/// which must not be empty.
///
/// # Errors
/// See [`CredentialError`].
pub fn read_credential(
    dir: Option<&Path>,
    name: &str,
    packaged_dir: &'static str,
) -> Result<String, CredentialError> {
    let path = locate_credential(dir, name, packaged_dir)?;
    let text =
        std::fs::read_to_string(&path).map_err(|source| CredentialError::Read { path, source })?;
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        return Err(CredentialError::Empty {
            name: name.to_owned(),
        });
    }
    Ok(first.to_owned())
}

/// [`read_credential`] from this process's `$CREDENTIALS_DIRECTORY`.
///
/// # Errors
/// See [`CredentialError`].
pub fn read_own_credential(
    name: &str,
    packaged_dir: &'static str,
) -> Result<String, CredentialError> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    read_credential(dir.as_deref(), name, packaged_dir)
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

    #[test]
    fn reads_the_first_line_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let packaged = "/etc/markoff/central-maintain-credentials";

        let e = read_credential(None, "owner-password", packaged).unwrap_err();
        assert!(matches!(e, CredentialError::NoDirectory { .. }), "{e}");
        assert!(e.to_string().contains("LoadCredential="), "{e}");

        let e = read_credential(Some(d), "owner-password", packaged).unwrap_err();
        assert!(matches!(e, CredentialError::Missing { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("/etc/markoff/central-maintain-credentials/owner-password"),
            "{e}"
        );

        std::fs::write(d.join("markoff_owner-password"), "\nsecond line\n").unwrap();
        let e = read_credential(Some(d), "owner-password", packaged).unwrap_err();
        assert!(matches!(e, CredentialError::Empty { .. }), "{e}");
        assert!(!e.to_string().contains("second line"), "{e}");

        std::fs::write(
            d.join("markoff_owner-password"),
            "s3cret:with\\chars\nignored\n",
        )
        .unwrap();
        assert_eq!(
            read_credential(Some(d), "owner-password", packaged).unwrap(),
            "s3cret:with\\chars"
        );

        std::fs::create_dir(d.join("markoff_a-directory")).unwrap();
        let e = read_credential(Some(d), "a-directory", packaged).unwrap_err();
        assert!(matches!(e, CredentialError::Read { .. }), "{e}");
    }
}
