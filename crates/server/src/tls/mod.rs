//! TLS on the main port (`--ssl-certfile` and the rest, uvicorn's names): HTTP and WebSockets
//! over one handshake, TLS 1.2 and 1.3, ALPN `http/1.1`.
//!
//! rustls with aws-lc-rs' cryptography (rustls' default provider) rather than ring: rustls
//! deprecated its ring provider in 0.23.48 for want of post-quantum key exchange, and
//! aws-lc-rs negotiates X25519MLKEM768, which current Chrome and Firefox offer first. It
//! builds with a C compiler alone (no cmake, no Go, on Linux x86_64 and aarch64), about a
//! minute more of `pip install`'s build than ring.
//!
//! The certificate is read again on SIGHUP (`reload`): handshakes from then on use the new
//! one, connections already open keep theirs. A file that does not load keeps the old one.

mod files;

use std::sync::{Arc, PoisonError, RwLock};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

pub use files::TlsFiles;

use crate::cli::ClientCerts;

/// Marks a request that came over TLS (a request extension the listener adds), so the app
/// sees `https` and `wss`.
#[derive(Clone, Copy, Debug)]
pub struct Encrypted;

/// ALPN: the one protocol served (HTTP/2 is not).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Makes aws-lc-rs the process's cryptography for every rustls user in it (the broker's `rediss://`
/// link too). Idempotent.
pub fn install_provider() {
    // An error means a provider is installed already: the first one stays.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The server's TLS settings, as last loaded from its files.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Reads the files; any problem is an error naming the file and what to do.
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let config = server_config(&files)?;
        Ok(Self { files, current: RwLock::new(config) })
    }

    /// Reads the files again; on success, handshakes from now on use them. On failure the
    /// previous settings stay, and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// Accepts handshakes with the settings loaded last.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = files::certificate_chain(&files.certfile)?;
    let key = files::private_key(&files.keyfile, files.keyfile_password.as_deref())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?;
    let builder = match (files.client_certs, &files.ca_certs) {
        (ClientCerts::None, _) => builder.with_no_client_auth(),
        (asked, Some(ca_certs)) => {
            let roots = Arc::new(files::client_roots(ca_certs)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = match asked {
                ClientCerts::Optional => verifier.allow_unauthenticated(),
                ClientCerts::None | ClientCerts::Required => verifier,
            };
            let verifier =
                verifier.build().map_err(|error| format!("--ssl-ca-certs {}: {error}", ca_certs.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        (_, None) => {
            return Err("--ssl-cert-reqs asks clients for certificates: give the CAs to check them \
                        against with --ssl-ca-certs"
                .into());
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|error| {
        format!(
            "--ssl-certfile {} with --ssl-keyfile {}: {error} (is the key the certificate's?)",
            files.certfile.display(),
            files.keyfile.display()
        )
    })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}
