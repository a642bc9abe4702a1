//! Reading what `--ssl-certfile`, `--ssl-keyfile` (encrypted with `--ssl-keyfile-password` or
//! not) and `--ssl-ca-certs` name: PEM files, as uvicorn takes them. Every error names the
//! file and says what to do.

use std::path::{Path, PathBuf};

use pkcs8::EncryptedPrivateKeyInfoOwned;
use pkcs8::der::{Decode, Document};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::cli::ClientCerts;

/// The PEM label of a PKCS#8 key encrypted with a password (RFC 5958), which rustls does not
/// read itself.
const ENCRYPTED_KEY_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
/// OpenSSL's older encrypted format (`Proc-Type: 4,ENCRYPTED` in a traditional RSA or EC
/// key), which no maintained Rust crate decrypts.
const LEGACY_ENCRYPTED_MARK: &str = "Proc-Type: 4,ENCRYPTED";

/// Where the server's certificate, its key and the client CAs are read from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    pub keyfile_password: Option<String>,
    pub ca_certs: Option<PathBuf>,
    pub client_certs: ClientCerts,
}

/// The certificate chain, leaf first.
pub fn certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| format!("--ssl-certfile {}: {error}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--ssl-certfile {}: no certificate in it (a PEM file with `-----BEGIN CERTIFICATE-----`, the server's \
             own first, then its intermediates)",
            path.display()
        ));
    }
    Ok(chain)
}

/// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) in PEM, or PKCS#8 encrypted with
/// `password`.
pub fn private_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let named = |what: String| format!("--ssl-keyfile {}: {what}", path.display());
    let text = std::fs::read_to_string(path).map_err(|error| named(error.to_string()))?;
    if text.contains(LEGACY_ENCRYPTED_MARK) {
        return Err(named(
            "the key is encrypted in OpenSSL's legacy format, which is not supported: convert it to encrypted \
             PKCS#8 with `openssl pkcs8 -topk8 -in old.pem -out new.pem`"
                .into(),
        ));
    }
    let Some(start) = text.find(ENCRYPTED_KEY_LABEL) else {
        if password.is_some() {
            tracing::warn!("--ssl-keyfile-password is given but {} is not encrypted: ignored", path.display());
        }
        return PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|error| {
            named(format!("{error} (expected a PEM private key: PKCS#8, RSA or EC, encrypted PKCS#8 with a password)"))
        });
    };
    let Some(password) = password else {
        return Err(named("the key is encrypted: give its password with --ssl-keyfile-password".into()));
    };
    // PEM to DER first: the decryption parameters cannot be decoded straight from PEM (der's
    // PEM reader cannot look ahead).
    let unreadable = |error: pkcs8::der::Error| named(format!("cannot read the encrypted key: {error}"));
    let (_label, der) = Document::from_pem(&text[start..]).map_err(unreadable)?;
    let encrypted = EncryptedPrivateKeyInfoOwned::from_der(der.as_bytes()).map_err(unreadable)?;
    let key = encrypted
        .decrypt(password)
        .map_err(|_| named("cannot decrypt the key: is --ssl-keyfile-password right?".into()))?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.as_bytes().to_vec())))
}

/// The CAs a client certificate must come from.
pub fn client_roots(path: &Path) -> Result<RootCertStore, String> {
    let named = |what: String| format!("--ssl-ca-certs {}: {what}", path.display());
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| named(error.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(named("no CA certificate in it".into()));
    }
    Ok(roots)
}
