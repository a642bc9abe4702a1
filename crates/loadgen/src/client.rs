//! Opening a client connection the same way for every load: `ws://` over TCP, or `wss://`
//! over rustls (aws-lc-rs, as the server uses it) trusting the CA that `--ca-file` names.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::either::Either;

/// A plain connection (`Left`) or a TLS one (`Right`): one branch per read or write on the
/// plain path.
pub type Stream = Either<TcpStream, TlsStream<TcpStream>>;
pub type Client = WebSocketStream<Stream>;

/// The TLS settings for `wss://` URLs, set once from `--ca-file`.
static TLS: OnceLock<TlsConnector> = OnceLock::new();
/// What the first TLS handshake negotiated, for the load's report.
static NEGOTIATED: OnceLock<serde_json::Value> = OnceLock::new();

/// Trusts the CA certificates in `ca_file` (PEM) for `wss://` URLs. The client offers TLS 1.3
/// and 1.2 with aws-lc-rs' cipher suites, ALPN `http/1.1` and X25519 alone for the key
/// exchange: what every server (OpenSSL 3.0's among them) negotiates alike, so the servers
/// compared all run the same handshake.
pub fn trust(ca_file: &str) -> Result<(), String> {
    let named = |what: String| format!("--ca-file {ca_file}: {what}");
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| named(error.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(named("no CA certificate in it".into()));
    }
    let provider = rustls::crypto::CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519],
        ..aws_lc_rs::default_provider()
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| named(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let _ = TLS.set(TlsConnector::from(Arc::new(config)));
    Ok(())
}

/// What the first `wss://` handshake negotiated (protocol version, cipher suite, key
/// exchange group, ALPN), or None if there was none.
pub fn negotiated() -> Option<serde_json::Value> {
    NEGOTIATED.get().cloned()
}

/// A message of exactly `size` bytes that starts with `tag` and says which one it is.
pub fn payload(tag: char, index: usize, size: usize) -> String {
    let mut text = format!("{tag}{index}");
    text.extend(std::iter::repeat_n('.', size.saturating_sub(text.len())));
    text
}

pub async fn connect(url: &str) -> Result<Client, String> {
    let (secure, rest) = if let Some(rest) = url.strip_prefix("wss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (false, rest)
    } else {
        return Err(format!("{url}: only ws:// and wss://host:port/path URLs are supported"));
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let stream = TcpStream::connect(authority).await.map_err(|error| format!("connect to {authority}: {error}"))?;
    // Small frames must go out at once, as a browser's would.
    stream.set_nodelay(true).map_err(|error| error.to_string())?;
    let stream = if secure { Either::Right(handshake(url, authority, stream).await?) } else { Either::Left(stream) };
    // Thousands of idle connections: keep the per-connection buffers small (the defaults
    // reserve 128 KiB to read).
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|error| format!("handshake with {url}: {error}"))?;
    Ok(socket)
}

async fn handshake(url: &str, authority: &str, stream: TcpStream) -> Result<TlsStream<TcpStream>, String> {
    let connector = TLS.get().ok_or_else(|| format!("{url}: wss:// needs --ca-file"))?;
    let host = authority.rsplit_once(':').map_or(authority, |(host, _port)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|error| format!("{url}: {error}"))?;
    let stream = connector.connect(name, stream).await.map_err(|error| format!("TLS handshake with {url}: {error}"))?;
    let (_, session) = stream.get_ref();
    let _ = NEGOTIATED.set(json!({
        "protocol": session.protocol_version().map(|version| format!("{version:?}")),
        "cipher_suite": session.negotiated_cipher_suite().map(|suite| format!("{:?}", suite.suite())),
        "key_exchange": session.negotiated_key_exchange_group().map(|group| format!("{:?}", group.name())),
        "alpn": session.alpn_protocol().map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
    }));
    Ok(stream)
}

/// After a load the generator drops its connections with a reset rather than a Close: the
/// next load should not wait for thousands of closing handshakes, nor leave thousands of
/// client ports in TIME_WAIT.
pub fn abort(socket: Client) {
    let _ = match socket.into_inner() {
        Either::Left(tcp) => tcp.set_zero_linger(),
        Either::Right(tls) => tls.get_ref().0.set_zero_linger(),
    };
}
