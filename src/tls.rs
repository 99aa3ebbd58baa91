//! TLS from PEM files with rustls (TLS 1.2 and 1.3), and certificate reload: a
//! SIGHUP re-reads the files and new handshakes use them, while open connections
//! keep theirs.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// A TLS server configuration whose certificate can be swapped atomically.
pub struct TlsReloader {
    files: TlsFiles,
    resolver: Arc<SwappableCert>,
    config: Arc<ServerConfig>,
}

#[derive(Debug)]
struct SwappableCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|key| key.clone())
    }
}

impl TlsReloader {
    /// Loads the files; `alpn` lists the protocols offered (e.g. h2, http/1.1).
    pub fn load(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<Self> {
        let key = load_certified_key(files)?;
        let resolver = Arc::new(SwappableCert(RwLock::new(Arc::new(key))));
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            files: files.clone(),
            resolver,
            config: Arc::new(config),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Re-reads the certificate and key; on failure the old pair stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let key = load_certified_key(&self.files)?;
        let mut current = self
            .resolver
            .0
            .write()
            .map_err(|_| anyhow::anyhow!("certificate lock poisoned"))?;
        *current = Arc::new(key);
        Ok(())
    }
}

fn load_certified_key(files: &TlsFiles) -> anyhow::Result<CertifiedKey> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("{}: no usable private key: {e}", files.key.display()))?;
    let signer = ring::sign::any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("{}: unsupported private key: {e}", files.key.display()))?;
    Ok(CertifiedKey::new(certs, signer))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate found",
        path.display()
    );
    Ok(certs)
}
