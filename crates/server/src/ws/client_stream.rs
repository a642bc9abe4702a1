//! The stream under a plain (uncompressed) WebSocket connection, TCP or TLS over TCP, read
//! without a large buffer per connection.
//!
//! tungstenite keeps a read buffer per connection for its whole life, and reads at most that
//! much per system call. A large buffer makes every idle connection expensive (8 KiB was
//! more than half of an idle connection's memory); a small one alone makes a busy client
//! cost several system calls per batch (pipelined echo lost 15-20%). So tungstenite gets a
//! small buffer, and each read here is one `readv` into that buffer and a 64 KiB scratch
//! buffer shared by all connections of the thread. Whatever lands in the scratch buffer is
//! kept, at its exact size, until tungstenite takes it; a quiet connection keeps nothing.
//! Over TLS the same holds one layer up: each read decrypts into the scratch buffer (rustls
//! reads the socket in records of up to 16 KiB), and what tungstenite's buffer does not take
//! is kept the same way.

use std::cell::RefCell;
use std::io::{self, IoSliceMut};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How much one read can take beyond tungstenite's own buffer.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// What the bytes travel over.
pub enum Transport {
    Tcp(TcpStream),
    /// Boxed: rustls' state is large, and most connections are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

pub struct ClientStream {
    transport: Transport,
    /// Read from the socket, not yet taken by tungstenite; empty (and unallocated) while
    /// the client is quiet.
    ahead: BytesMut,
}

impl ClientStream {
    /// `leftover`: what the client sent right after its handshake request, already read by
    /// the HTTP server.
    pub fn new(transport: Transport, leftover: &[u8]) -> Self {
        ClientStream { transport, ahead: BytesMut::from(leftover) }
    }

    fn give_ahead(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.ahead.len());
        buf.put_slice(&self.ahead[..n]);
        self.ahead.advance(n);
        if self.ahead.is_empty() {
            // Release the allocation: an idle connection keeps no read-ahead buffer.
            self.ahead = BytesMut::new();
        }
    }

    /// One `readv` into `buf` and the scratch buffer; what overflowed into the scratch
    /// buffer is kept in `ahead`. Returns the bytes that went into `buf`.
    ///
    /// A read that comes back short has emptied the socket: the readiness it was made on is
    /// forgotten at once (as tokio's own reads do), so the next read waits for new data
    /// instead of spending a system call on EAGAIN. Readiness that arrived during the read is
    /// newer and stays.
    fn read_vectored(tcp: &TcpStream, ahead: &mut BytesMut, buf: &mut [u8]) -> io::Result<usize> {
        SCRATCH_BUFFER.with_borrow_mut(|scratch| {
            let mut slices = [IoSliceMut::new(buf), IoSliceMut::new(scratch)];
            let room = slices[0].len() + slices[1].len();
            let mut read = 0;
            // `try_io` forgets the readiness it started from when its closure reports
            // WouldBlock; a short read reports it, keeping the count here.
            let outcome = tcp.try_io(Interest::READABLE, || {
                read = tcp.try_read_vectored(&mut slices)?;
                if read > 0 && read < room { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
            });
            match outcome {
                Err(error) if read == 0 => return Err(error),
                _ => {}
            }
            let direct = read.min(slices[0].len());
            ahead.extend_from_slice(&scratch[..read - direct]);
            Ok(direct)
        })
    }

    fn poll_read_tcp(
        tcp: &TcpStream,
        ahead: &mut BytesMut,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            match Self::read_vectored(tcp, ahead, buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; `try_read_vectored` cleared it, so the next
                // `poll_read_ready` registers for the next wake-up.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    /// One decrypting read into the scratch buffer; `buf` gets what fits, `ahead` the rest.
    fn poll_read_tls(
        tls: &mut TlsStream<TcpStream>,
        ahead: &mut BytesMut,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        SCRATCH_BUFFER.with_borrow_mut(|scratch| {
            let mut decrypted = ReadBuf::new(scratch);
            ready!(Pin::new(tls).poll_read(cx, &mut decrypted))?;
            let decrypted = decrypted.filled();
            let direct = decrypted.len().min(buf.remaining());
            buf.put_slice(&decrypted[..direct]);
            ahead.extend_from_slice(&decrypted[direct..]);
            Poll::Ready(Ok(()))
        })
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            // Reading would put everything into the scratch buffer and report 0: end of stream.
            return Poll::Ready(Ok(()));
        }
        if !this.ahead.is_empty() {
            this.give_ahead(buf);
            return Poll::Ready(Ok(()));
        }
        match &mut this.transport {
            Transport::Tcp(tcp) => Self::poll_read_tcp(tcp, &mut this.ahead, cx, buf),
            Transport::Tls(tls) => Self::poll_read_tls(tls, &mut this.ahead, cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.transport {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_write(cx, data),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.transport {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Tcp(tcp) => tcp.is_write_vectored(),
            Transport::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.transport {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_flush(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    /// Over TLS, sends close_notify first.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.transport {
            Transport::Tcp(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn reads_everything_in_order_through_small_and_large_reads() {
        let (mut client, server) = pair().await;
        let sent: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
        let writer = tokio::spawn({
            let sent = sent.clone();
            async move {
                client.write_all(&sent).await.unwrap();
                client.shutdown().await.unwrap();
            }
        });
        let mut stream = ClientStream::new(Transport::Tcp(server), b"prefix");
        let mut received = Vec::new();
        let mut small = [0u8; 100];
        loop {
            let n = stream.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&small[..n]);
        }
        writer.await.unwrap();
        assert_eq!(&received[..6], b"prefix");
        assert_eq!(&received[6..], &sent[..]);
    }

    #[tokio::test]
    async fn keeps_no_buffer_once_the_client_is_quiet() {
        let (mut client, server) = pair().await;
        let mut stream = ClientStream::new(Transport::Tcp(server), b"");
        client.write_all(&[7u8; 5000]).await.unwrap();
        let mut small = [0u8; 64];
        let mut total = 0;
        while total < 5000 {
            total += stream.read(&mut small).await.unwrap();
        }
        // The next read finds the socket empty: it must wait, and hold nothing meanwhile.
        let pending = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut small);
            Poll::Ready(Pin::new(&mut stream).poll_read(cx, &mut buf).is_pending())
        })
        .await;
        assert!(pending);
        assert_eq!(stream.ahead.capacity(), 0);
    }
}
