//! TLS clients (an external MQTT broker, webhooks) and the embedded MQTT
//! broker's TLS listener: rustls on ring, which sqlx already builds.

use std::path::PathBuf;
use std::sync::Arc;

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use the CA certificates in {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
    #[error("cannot use the certificate chain in {path}: {reason}")]
    CertFile { path: PathBuf, reason: String },
    #[error("cannot use the private key in {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
}

/// A rustls client configuration on ring, trusting `ca_file` or, without
/// one, the Mozilla roots.
pub fn client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_err = |reason: String| TlsError::CaFile {
                path: path.to_owned(),
                reason,
            };
            for c in pem_certificates(path, ca_err)? {
                roots.add(c).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The PEM certificates in `path`, at least one; `err` names the file in
/// the error.
fn pem_certificates(
    path: &std::path::Path,
    err: impl Fn(String) -> TlsError,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("it holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

/// A rustls server configuration on ring for the certificate chain in
/// `cert_file` and the private key in `key_file` (PEM both).
pub fn server_config(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let certs = pem_certificates(cert_file, |reason| TlsError::CertFile {
        path: cert_file.to_owned(),
        reason,
    })?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::KeyFile {
        path: key_file.to_owned(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::KeyFile {
            path: key_file.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(config))
}

/// An HTTP client for webhooks: HTTPS against the Mozilla roots, and no
/// redirects followed (a 3xx is the answer; `alerts::webhook` says why).
pub fn https_client() -> Result<reqwest::Client, TlsError> {
    let tls = client_config(None)?;
    reqwest::Client::builder()
        .use_preconfigured_tls(Arc::unwrap_or_clone(tls))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))
}
