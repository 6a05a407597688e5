//! TLS settings: the server's own (HTTPS and WSS on `--listen`) and the
//! client settings for the backends (PostgreSQL, Redis, Cassandra), all on
//! rustls with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// Makes ring the process's rustls provider, for the libraries that build
/// their own rustls settings (the Redis client does). Harmless when one is
/// installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS settings from a PEM certificate chain and its key;
/// HTTP/1.1 is the one protocol offered (WebSocket upgrades need it).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServerError> {
    let tls_err = |what: String| ServerError::Tls(what);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_err(format!("--tls-cert {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(format!("--tls-cert {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(tls_err(format!(
            "--tls-cert {}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls_err(format!("--tls-key {}: {e}", key.display())))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_err(format!("--tls-cert and --tls-key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA certificates of `--backend-ca`, as PEM bytes (the Redis client
/// takes them so).
pub fn backend_ca_pem(path: &Path) -> Result<Vec<u8>, ServerError> {
    let pem = std::fs::read(path)
        .map_err(|e| ServerError::Tls(format!("--backend-ca {}: {e}", path.display())))?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .filter(Result::is_ok)
        .count();
    if count == 0 {
        return Err(ServerError::Tls(format!(
            "--backend-ca {}: no certificate in it",
            path.display()
        )));
    }
    Ok(pem)
}

/// Client settings for TLS to a backend: the system's trust store plus the
/// certificates of `extra_ca` (PEM), verifying the server's name.
pub fn backend_client_config(extra_ca: Option<&[u8]>) -> Result<Arc<ClientConfig>, ServerError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "a certificate of the system's trust store was not loaded");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    let mut extra = 0;
    if let Some(pem) = extra_ca {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ServerError::Tls(format!("--backend-ca: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ServerError::Tls(format!("--backend-ca: {e}")))?;
            extra += 1;
        }
    }
    tracing::debug!(system = added, extra, "backend TLS trust roots");
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let err = server_config(&missing, &missing).unwrap_err();
        assert!(err.to_string().contains("--tls-cert"), "{err}");

        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, a.cert.pem()).unwrap();
        std::fs::write(&key, b.signing_key.serialize_pem()).unwrap();
        let err = server_config(&cert, &key).unwrap_err();
        assert!(err.to_string().contains("do not go together"), "{err}");
        std::fs::write(&key, a.signing_key.serialize_pem()).unwrap();
        server_config(&cert, &key).expect("a matching pair");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = backend_ca_pem(&empty).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
        let ca = backend_ca_pem(&cert).unwrap();
        backend_client_config(Some(&ca)).expect("client settings");
    }
}
