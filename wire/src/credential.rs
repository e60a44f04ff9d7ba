//! systemd credentials: secrets a unit hands its service with
//! `LoadCredential=NAME:PATH` or `LoadCredentialEncrypted=NAME:PATH`, found by
//! name in the directory systemd names in [`CREDENTIALS_DIRECTORY_ENV`]
//! (`/run/credentials/UNIT/`, readable only by the service, never on argv or
//! in the environment). Configs name a credential with a `*_credential` key
//! (`[kafka] password_credential`, `[influx] token_credential`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::Error;

/// The environment variable systemd sets to the unit's credentials directory.
pub const CREDENTIALS_DIRECTORY_ENV: &str = "CREDENTIALS_DIRECTORY";

/// The path of the systemd credential `name`: `$CREDENTIALS_DIRECTORY/name`.
///
/// `key` is the config key that named the credential (for the error).
///
/// # Errors
/// [`Error::Credential`] when `name` is not a plain file name (empty, `.`,
/// `..` or containing `/`), or when [`CREDENTIALS_DIRECTORY_ENV`] is not set
/// (the process was not started by a unit with `LoadCredential=`).
pub fn credential_path(key: &'static str, name: &str) -> Result<PathBuf, Error> {
    credential_path_in(key, name, std::env::var_os(CREDENTIALS_DIRECTORY_ENV))
}

/// [`credential_path`] with the directory given instead of read from the
/// environment (tests, and callers that resolve it themselves).
pub(crate) fn credential_path_in(key: &'static str, name: &str, dir: Option<OsString>) -> Result<PathBuf, Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Error::Credential {
            key,
            name: name.to_owned(),
            message: "a credential name is a plain file name (as in LoadCredential=NAME:PATH)".into(),
        });
    }
    match dir.filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join(name)),
        None => Err(Error::Credential {
            key,
            name: name.to_owned(),
            message: format!(
                "${CREDENTIALS_DIRECTORY_ENV} is not set: start the service from a systemd unit with \
                 LoadCredentialEncrypted={name}:PATH (or LoadCredential=), or set the file key instead"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_is_found_by_name_in_the_directory() {
        let path = credential_path_in("password_credential", "kafka.password", Some("/run/credentials/x".into()))
            .expect("path");
        assert_eq!(path, PathBuf::from("/run/credentials/x/kafka.password"));
    }

    #[test]
    fn unset_directory_is_a_clear_error_naming_key_and_credential() {
        for dir in [None, Some(OsString::new())] {
            let err = credential_path_in("password_credential", "kafka.password", dir).expect_err("must fail");
            let text = err.to_string();
            assert!(
                text.contains("password_credential")
                    && text.contains("kafka.password")
                    && text.contains("$CREDENTIALS_DIRECTORY is not set")
                    && text.contains("LoadCredentialEncrypted=kafka.password:"),
                "{text}"
            );
        }
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        for name in ["", ".", "..", "../etc/shadow", "a/b"] {
            let err = credential_path_in("token_credential", name, Some("/run/credentials/x".into()))
                .expect_err("must refuse");
            assert!(matches!(err, Error::Credential { key: "token_credential", .. }), "{name}: {err:?}");
        }
    }
}
