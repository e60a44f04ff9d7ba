//! The `[kafka]` TOML table shared by agent, ingest and replay configs, and
//! the SASL_SSL (SCRAM-SHA-512) librdkafka configuration built from it.
//!
//! The password is read from `password_file` (which must not be
//! world-readable) or [`PASSWORD_ENV`]; it is never printed: [`KafkaSettings`]
//! holds only the path, and rdkafka's `ClientConfig` leaves sensitive keys
//! out of its `Debug` output (a test here holds it to that).

use std::path::{Path, PathBuf};

use rdkafka::config::ClientConfig;
use serde::Deserialize;

use crate::Error;

/// The environment variable read when `password_file` is not set.
pub const PASSWORD_ENV: &str = "NETPROBE_KAFKA_PASSWORD";

/// The `[kafka]` table of a netprobe TOML config.
///
/// ```toml
/// [kafka]
/// brokers = ["127.0.0.1:9093"]
/// username = "agent"
/// password_file = "/etc/netprobe/kafka.password"   # or env NETPROBE_KAFKA_PASSWORD
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
    /// readable by others. When absent, [`PASSWORD_ENV`] is read.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
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
    /// [`Error::PasswordFile`], [`Error::PasswordFileWorldReadable`] or
    /// [`Error::PasswordMissing`] when the password cannot be had.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        if self.brokers.is_empty() {
            return Err(Error::KafkaSetting { key: "brokers", message: "needs at least one host:port".into() });
        }
        if self.username.is_empty() {
            return Err(Error::KafkaSetting { key: "username", message: "must not be empty".into() });
        }
        let password = match &self.password_file {
            Some(path) => read_password_file(path)?,
            None => std::env::var(PASSWORD_ENV)
                .ok()
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
    fn toml_table_rejects_unknown_keys() {
        let err = toml::from_str::<KafkaSettings>(
            "brokers = [\"b:9093\"]\nusername = \"agent\"\nca_file = \"/ca.pem\"\npasword_file = \"/x\"\n",
        )
        .expect_err("typo must be an error");
        let text = err.to_string();
        assert!(text.contains("pasword_file") && text.contains("line 4"), "{text}");
    }
}
