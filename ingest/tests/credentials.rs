//! Secrets handed over as systemd credentials: `[kafka] password_credential`
//! and `[influx] token_credential` name files in `$CREDENTIALS_DIRECTORY`,
//! the way a unit with `LoadCredentialEncrypted=NAME:PATH` lays them out.
//!
//! One test function on purpose: it sets process environment variables, and
//! this file is its own test binary, so nothing else reads them concurrently.

use std::os::unix::fs::PermissionsExt;

use netprobe_ingest::Config;

fn write_secret(dir: &std::path::Path, name: &str, contents: &str) {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write credential");
    // systemd hands credentials over read-only to the service user.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
}

fn config(dir: &std::path::Path, kafka_secret: &str, influx_secret: &str) -> Config {
    let path = dir.join("ingest.toml");
    let text = format!(
        "[kafka]\nbrokers = [\"127.0.0.1:9093\"]\nusername = \"ingest\"\n{kafka_secret}\nca_file = \"/etc/netprobe/ca.pem\"\n\n\
         [influx]\nurl = \"http://127.0.0.1:8086\"\norg = \"netprobe\"\nbucket = \"probes\"\n{influx_secret}\n"
    );
    std::fs::write(&path, text).expect("write config");
    Config::load(&path).expect("config loads")
}

#[test]
fn kafka_password_and_influx_token_come_from_named_systemd_credentials() {
    let creds = tempfile::tempdir().expect("credentials dir");
    write_secret(creds.path(), "kafka.password", "kafka-secret\n");
    write_secret(creds.path(), "influx.token", "influx-secret\n");
    let work = tempfile::tempdir().expect("work dir");
    let c = config(work.path(), "password_credential = \"kafka.password\"", "token_credential = \"influx.token\"");

    std::env::remove_var("NETPROBE_KAFKA_PASSWORD");
    std::env::remove_var("NETPROBE_INFLUX_TOKEN");
    std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
    assert_eq!(c.influx.token().expect("token from credential"), "influx-secret");
    let kafka = c.kafka.client_config().expect("kafka config from credential");
    assert_eq!(kafka.get("sasl.password"), Some("kafka-secret"));

    // Outside systemd the error says which key names which credential and why.
    std::env::remove_var("CREDENTIALS_DIRECTORY");
    let text = c.influx.token().expect_err("no credentials directory").to_string();
    assert!(
        text.contains("token_credential") && text.contains("influx.token") && text.contains("CREDENTIALS_DIRECTORY"),
        "{text}"
    );
    let text = c.kafka.client_config().expect_err("no credentials directory").to_string();
    assert!(text.contains("password_credential") && text.contains("kafka.password"), "{text}");

    // The file key and the credential key together are refused.
    let both = config(
        work.path(),
        "password_file = \"/etc/netprobe/kafka.password\"",
        "token_file = \"/etc/netprobe/influx.token\"\ntoken_credential = \"influx.token\"",
    );
    let text = both.influx.token().expect_err("both").to_string();
    assert!(text.contains("token_file") && text.contains("token_credential"), "{text}");
}
