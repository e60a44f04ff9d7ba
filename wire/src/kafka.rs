//! The `[kafka]` TOML table shared by agent, ingest and replay configs, and
//! the SASL_SSL (SCRAM-SHA-512) librdkafka configuration built from it.
//!
//! The password is read from `password_file` (which must not be
//! world-readable), from the systemd credential named by `password_credential`
//! (`$CREDENTIALS_DIRECTORY/NAME`, see [`crate::credential_path`]) or from
//! [`PASSWORD_ENV`]; it is never printed: [`KafkaSettings`]
//! holds only the path, and rdkafka's `ClientConfig` leaves sensitive keys
//! out of its `Debug` output (a test here holds it to that).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rdkafka::config::ClientConfig;
use serde::Deserialize;

use crate::credential::credential_path_in;
use crate::{Error, CREDENTIALS_DIRECTORY_ENV};

/// The environment variable read when `password_file` is not set.
pub const PASSWORD_ENV: &str = "NETPROBE_KAFKA_PASSWORD";

/// The `[kafka]` table of a netprobe TOML config.
///
/// ```toml
/// [kafka]
/// brokers = ["127.0.0.1:9093"]
/// username = "agent"
/// password_file = "/etc/netprobe/kafka.password"   # or env NETPROBE_KAFKA_PASSWORD
/// # password_credential = "kafka.password"         # under systemd: LoadCredentialEncrypted=kafka.password:...
/// ca_file = "/etc/netprobe/ca.pem"
/// topic_prefix = ""
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port` of their SASL_SSL listeners.
    pub brokers: Vec<String>,
    /// SCRAM-SHA-512 user name (the principal: `agent`, `ingest`, `replay`).
    pub username: String,
    /// File holding the password (trailing newline ignored); must not be
    /// readable by others. When neither this nor `password_credential` is
    /// set, [`PASSWORD_ENV`] is read.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Name of the systemd credential holding the password, read from
    /// `$CREDENTIALS_DIRECTORY/NAME` (the unit has
    /// `LoadCredentialEncrypted=NAME:PATH` or `LoadCredential=NAME:PATH`).
    /// Exclusive with `password_file`. Default: none.
    #[serde(default)]
    pub password_credential: Option<String>,
    /// PEM file of the CA that signed the brokers' certificates.
    pub ca_file: PathBuf,
    /// Prepended to every topic name (default empty).
    #[serde(default)]
    pub topic_prefix: String,
}

impl KafkaSettings {
    /// The settings of one principal of the local stack, from the variables
    /// `scripts/stack env` prints: `NETPROBE_KAFKA_BROKERS`,
    /// `NETPROBE_KAFKA_CA`, `NETPROBE_KAFKA_<PRINCIPAL>_USER` and
    /// `NETPROBE_KAFKA_<PRINCIPAL>_PASSWORD_FILE` (principal `AGENT`,
    /// `INGEST`, `REPLAY` or `ADMIN`), and `NETPROBE_KAFKA_TOPIC_PREFIX`
    /// (optional). For tests, the demo and operator tools.
    ///
    /// # Errors
    /// [`Error::MissingEnv`] naming the first variable that is not set.
    pub fn from_stack_env(principal: &str) -> Result<KafkaSettings, Error> {
        let var = |name: String| std::env::var(&name).map_err(|_| Error::MissingEnv { name });
        Ok(KafkaSettings {
            brokers: var("NETPROBE_KAFKA_BROKERS".into())?.split(',').map(str::to_owned).collect(),
            username: var(format!("NETPROBE_KAFKA_{principal}_USER"))?,
            password_file: Some(var(format!("NETPROBE_KAFKA_{principal}_PASSWORD_FILE"))?.into()),
            password_credential: None,
            ca_file: var("NETPROBE_KAFKA_CA".into())?.into(),
            topic_prefix: std::env::var("NETPROBE_KAFKA_TOPIC_PREFIX").unwrap_or_default(),
        })
    }

    /// Builds the librdkafka configuration: `security.protocol=SASL_SSL`,
    /// `sasl.mechanism=SCRAM-SHA-512`, `ssl.ca.location=ca_file` and broker
    /// hostname verification (`ssl.endpoint.identification.algorithm=https`).
    /// Callers add their role's settings (group, acks, ...) with `set`.
    ///
    /// # Errors
    /// [`Error::KafkaSetting`] for an empty broker list or user name;
    /// [`Error::PasswordFile`], [`Error::PasswordFileWorldReadable`],
    /// [`Error::Credential`] or [`Error::PasswordMissing`] when the password
    /// cannot be had.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        self.client_config_with(&|name| std::env::var_os(name))
    }

    /// [`KafkaSettings::client_config`] with the environment read through `env`.
    fn client_config_with(&self, env: &dyn Fn(&str) -> Option<OsString>) -> Result<ClientConfig, Error> {
        if self.brokers.is_empty() {
            return Err(Error::KafkaSetting { key: "brokers", message: "needs at least one host:port".into() });
        }
        if self.username.is_empty() {
            return Err(Error::KafkaSetting { key: "username", message: "must not be empty".into() });
        }
        let password = match (&self.password_file, &self.password_credential) {
            (Some(_), Some(_)) => {
                return Err(Error::KafkaSetting {
                    key: "password_credential",
                    message: "set either password_file or password_credential, not both".into(),
                })
            }
            (Some(path), None) => read_password_file(path)?,
            (None, Some(name)) => {
                read_password_file(&credential_path_in("password_credential", name, env(CREDENTIALS_DIRECTORY_ENV))?)?
            }
            (None, None) => env(PASSWORD_ENV)
                .and_then(|p| p.into_string().ok())
                .filter(|p| !p.is_empty())
                .ok_or(Error::PasswordMissing { env: PASSWORD_ENV })?,
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", &self.username)
            .set("sasl.password", password)
            .set("ssl.ca.location", self.ca_file.to_string_lossy())
            .set("ssl.endpoint.identification.algorithm", "https");
        Ok(config)
    }
}

/// Reads a password file, refusing one that others may read.
fn read_password_file(path: &Path) -> Result<String, Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| Error::PasswordFile { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o004 != 0 {
        return Err(Error::PasswordFileWorldReadable { path: path.to_owned(), mode });
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::PasswordFile { path: path.to_owned(), source })?;
    let password = text.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(Error::PasswordFile {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "file is empty"),
        });
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn settings(password_file: Option<PathBuf>) -> KafkaSettings {
        KafkaSettings {
            brokers: vec!["127.0.0.1:9093".into()],
            username: "agent".into(),
            password_file,
            password_credential: None,
            ca_file: "/etc/netprobe/ca.pem".into(),
            topic_prefix: String::new(),
        }
    }

    fn password_file(mode: u32, contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kafka.password");
        std::fs::write(&path, contents).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    #[test]
    fn builds_sasl_ssl_scram_with_hostname_verification() {
        let (_dir, path) = password_file(0o600, "s3cret-pw\n");
        let config = settings(Some(path)).client_config().expect("config");
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("agent"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/netprobe/ca.pem"));
        assert_eq!(config.get("ssl.endpoint.identification.algorithm"), Some("https"));
        assert_eq!(config.get("sasl.password"), Some("s3cret-pw"), "trailing newline stripped");
    }

    #[test]
    fn password_never_shows_in_debug() {
        let (_dir, path) = password_file(0o640, "s3cret-pw");
        let settings = settings(Some(path));
        let config = settings.client_config().expect("config");
        for text in [format!("{config:?}"), format!("{config:#?}"), format!("{settings:?}")] {
            assert!(!text.contains("s3cret-pw"), "password leaked: {text}");
        }
        assert!(format!("{config:?}").contains("sasl.username"), "the rest is shown");
    }

    #[test]
    fn world_readable_password_file_is_refused() {
        let (_dir, path) = password_file(0o644, "pw");
        let err = settings(Some(path.clone())).client_config().expect_err("must refuse");
        assert!(matches!(err, Error::PasswordFileWorldReadable { mode: 0o644, .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()) && text.contains("world-readable"), "{text}");
    }

    #[test]
    fn missing_password_file_names_the_path() {
        let err = settings(Some("/nonexistent/kafka.password".into())).client_config().expect_err("must fail");
        assert!(matches!(err, Error::PasswordFile { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/kafka.password"), "{err}");
    }

    #[test]
    fn empty_broker_list_is_a_setting_error() {
        let (_dir, path) = password_file(0o600, "pw");
        let mut s = settings(Some(path));
        s.brokers.clear();
        let err = s.client_config().expect_err("must fail");
        assert!(matches!(err, Error::KafkaSetting { key: "brokers", .. }), "{err:?}");
    }

    #[test]
    fn password_comes_from_the_named_systemd_credential() {
        let (dir, _path) = password_file(0o400, "cred-pw\n");
        let mut s = settings(None);
        s.password_credential = Some("kafka.password".into());
        let creds = dir.path().as_os_str().to_owned();
        let env = move |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
        let config = s.client_config_with(&env).expect("config");
        assert_eq!(config.get("sasl.password"), Some("cred-pw"));
    }

    #[test]
    fn credential_without_credentials_directory_names_key_and_credential() {
        let mut s = settings(None);
        s.password_credential = Some("kafka.password".into());
        let env = |name: &str| (name == "NETPROBE_KAFKA_PASSWORD").then(|| OsString::from("from-env"));
        let err = s.client_config_with(&env).expect_err("no directory");
        let text = err.to_string();
        assert!(matches!(err, Error::Credential { key: "password_credential", .. }), "{err:?}");
        assert!(text.contains("kafka.password") && text.contains("$CREDENTIALS_DIRECTORY is not set"), "{text}");
    }

    #[test]
    fn missing_credential_file_names_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = settings(None);
        s.password_credential = Some("kafka.password".into());
        let creds = dir.path().as_os_str().to_owned();
        let err = s.client_config_with(&move |_| Some(creds.clone())).expect_err("no file");
        let expected = dir.path().join("kafka.password");
        assert!(err.to_string().contains(&expected.display().to_string()), "{err}");
    }

    #[test]
    fn password_file_and_credential_together_are_refused() {
        let (_dir, path) = password_file(0o600, "pw");
        let mut s = settings(Some(path));
        s.password_credential = Some("kafka.password".into());
        let err = s.client_config_with(&|_| None).expect_err("both");
        assert!(matches!(err, Error::KafkaSetting { key: "password_credential", .. }), "{err:?}");
    }

    #[test]
    fn password_env_is_the_last_resort() {
        let env = |name: &str| (name == "NETPROBE_KAFKA_PASSWORD").then(|| OsString::from("env-pw"));
        let config = settings(None).client_config_with(&env).expect("config");
        assert_eq!(config.get("sasl.password"), Some("env-pw"));
        let err = settings(None).client_config_with(&|_| None).expect_err("nothing set");
        assert!(err.to_string().contains("password_credential"), "{err}");
    }

    #[test]
    fn toml_table_rejects_unknown_keys() {
        let err = toml::from_str::<KafkaSettings>(
            "brokers = [\"b:9093\"]\nusername = \"agent\"\nca_file = \"/ca.pem\"\npasword_file = \"/x\"\n",
        )
        .expect_err("typo must be an error");
        let text = err.to_string();
        assert!(text.contains("pasword_file") && text.contains("line 4"), "{text}");
    }
}
