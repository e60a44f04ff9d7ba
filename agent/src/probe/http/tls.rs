//! TLS settings of the HTTP probe: CA files, the system roots (loaded once
//! per process), ALPN, and what the handshake tells about the server.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use netprobe_wire::Timestamp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};

/// Reads a PEM file of CA certificates into a root store.
pub(super) fn read_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(roots)
}

/// TLS 1.2/1.3 client settings (ring) with ALPN `h2`, `http/1.1`.
pub(super) fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Client settings trusting the system roots (rustls-native-certs), loaded
/// once per process.
pub(crate) fn system_client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "cannot load a system CA certificate");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, ignored, "system CA certificates loaded");
            client_config(roots).map_err(|e| format!("TLS settings: {e}"))
        })
        .clone()
}

/// `notAfter` of a DER certificate, to the second.
pub(super) fn not_after(der: &CertificateDer<'_>) -> Option<Timestamp> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let seconds = cert.validity().not_after.timestamp();
    Some(Timestamp::from_unix_nanos(seconds.checked_mul(1_000_000_000)?))
}

pub(super) fn tls_version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}
