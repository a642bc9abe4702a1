//! Opening a client connection the same way for every load.

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub type Client = WebSocketStream<TcpStream>;

/// A message of exactly `size` bytes that starts with `tag` and says which one it is.
pub fn payload(tag: char, index: usize, size: usize) -> String {
    let mut text = format!("{tag}{index}");
    text.extend(std::iter::repeat_n('.', size.saturating_sub(text.len())));
    text
}

pub async fn connect(url: &str) -> Result<Client, String> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("{url}: only ws://host:port/path URLs are supported"))?;
    let stream = TcpStream::connect(authority).await.map_err(|error| format!("connect to {authority}: {error}"))?;
    // Small frames must go out at once, as a browser's would.
    stream.set_nodelay(true).map_err(|error| error.to_string())?;
    // Thousands of idle connections: keep the per-connection buffers small (the defaults
    // reserve 128 KiB to read).
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|error| format!("handshake with {url}: {error}"))?;
    Ok(socket)
}

/// After a load the generator drops its connections with a reset rather than a Close: the
/// next load should not wait for thousands of closing handshakes, nor leave thousands of
/// client ports in TIME_WAIT.
pub fn abort(socket: Client) {
    let stream = socket.into_inner();
    let _ = stream.set_zero_linger();
}
