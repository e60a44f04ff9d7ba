//! The crate's one error type: decoding failures and Kafka settings problems.

use std::path::PathBuf;

/// Everything that can go wrong in netprobe-wire.
///
/// Decode variants name the field (a JSON path such as `hops[2].ttl`) so a
/// DLQ reason or a log line says what is wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not JSON, or the JSON ends early.
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// A required field is absent.
    #[error("missing required field `{field}`")]
    MissingField {
        /// Field name as it appears in JSON.
        field: String,
    },
    /// A field is present but has the wrong type or an invalid value.
    #[error("invalid field `{path}`: {message}")]
    InvalidField {
        /// JSON path of the field, e.g. `hops[0].loss_pct`.
        path: String,
        /// What was wrong with it.
        message: String,
    },
    /// The message declares a schema version this build does not know.
    #[error("unsupported schema version {found} (this build reads {supported})")]
    UnsupportedSchema {
        /// The version in the message.
        found: u64,
        /// The version this build reads ([`crate::SCHEMA_VERSION`]).
        supported: u32,
    },
    /// `probe_type` names no known probe type.
    #[error("unknown probe_type {found:?}")]
    UnknownProbeType {
        /// The value found.
        found: String,
    },
    /// A message could not be serialized (a non-finite float, for example).
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The Kafka password file could not be read.
    #[error("cannot read Kafka password file {path}: {source}")]
    PasswordFile {
        /// The configured `password_file`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Kafka password file is readable by every user.
    #[error("Kafka password file {path} is world-readable (mode {mode:o}); run `chmod o-rwx {}`", path.display())]
    PasswordFileWorldReadable {
        /// The configured `password_file`.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Neither `password_file`, `password_credential` nor the password
    /// environment variable is set.
    #[error(
        "no Kafka password: set `password_file` or `password_credential` in [kafka], or the {env} environment variable"
    )]
    PasswordMissing {
        /// Name of the environment variable that was checked.
        env: &'static str,
    },
    /// A systemd credential named in the config cannot be located.
    #[error("config key `{key}` names systemd credential {name:?}: {message}")]
    Credential {
        /// The config key that names it, e.g. `password_credential`.
        key: &'static str,
        /// The credential name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A variable of `scripts/stack env` is not set.
    #[error("{name} is not set: run `scripts/stack up && eval \"$(scripts/stack env)\"` (scripts/test does it)")]
    MissingEnv {
        /// The variable.
        name: String,
    },
    /// The `[kafka]` table has an invalid value.
    #[error("invalid [kafka] setting `{key}`: {message}")]
    KafkaSetting {
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// Whether trying the same thing again later can succeed.
    ///
    /// Decoding errors never can (the bytes will not change); a password file
    /// that cannot be read might (it may be provisioned later).
    pub fn is_retriable(&self) -> bool {
        matches!(self, Error::PasswordFile { .. })
    }

    /// Short machine-readable class of a decoding error, for DLQ headers and
    /// bounded metric labels: `syntax`, `missing_field`, `invalid_field`,
    /// `unsupported_schema`, `unknown_probe_type`, `encode` or `config`.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "syntax",
            Error::MissingField { .. } => "missing_field",
            Error::InvalidField { .. } => "invalid_field",
            Error::UnsupportedSchema { .. } => "unsupported_schema",
            Error::UnknownProbeType { .. } => "unknown_probe_type",
            Error::Encode(_) => "encode",
            Error::PasswordFile { .. }
            | Error::PasswordFileWorldReadable { .. }
            | Error::PasswordMissing { .. }
            | Error::Credential { .. }
            | Error::MissingEnv { .. }
            | Error::KafkaSetting { .. } => "config",
        }
    }
}
