//! TLS configured by PEM files, for every listener and client of Weir: the control API
//! (`--tls-cert`, `--tls-key`, `--tls-ca`) and the coordinator/worker connections.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::error::{Error, Result};
use crate::server::TlsFiles;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::ReadTlsFile {
        path: path.to_path_buf(),
        source,
    })
}

/// A server's TLS: its certificate chain and private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_tls(files: &TlsFiles) -> Result<ServerTlsConfig> {
    let identity = Identity::from_pem(read(&files.cert)?, read(&files.key)?);
    Ok(ServerTlsConfig::new().identity(identity))
}

/// A client's TLS: it trusts the certificate authority in `ca` (PEM) and nothing else.
pub fn client_tls(ca: &Path) -> Result<ClientTlsConfig> {
    Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?)))
}
