//! Accepting TCP connections and serving HTTP/1.1 on them until shutdown begins.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Site, service};
use crate::admission::{Admission, Admitted};
use crate::config::HttpLimits;
use crate::ops::probes::{self, ProbesOnly};
use crate::throttle::{Report, Throttle};
use crate::tls::{Encrypted, Tls};

/// What answers the requests of one listening socket: a hyper service straight onto our
/// own routing (axum's Router in between cost a route lookup and two extension maps per
/// request, for nothing we used: docs/performance.md).
#[derive(Clone)]
pub enum Answerer {
    /// The app's routes, its WebSockets and the server's own paths.
    Site(Arc<Site>),
    /// `--metrics-port`: the probes only.
    Probes(Arc<ProbesOnly>),
}

impl Answerer {
    async fn answer(
        &self,
        request: hyper::Request<Incoming>,
        remote: SocketAddr,
        admitted: Option<Arc<Admitted>>,
    ) -> Response {
        let request = request.map(Body::new);
        match self {
            Self::Site(site) => service::serve(site, request, remote, admitted).await,
            Self::Probes(probes) => probes::handle(probes, &request),
        }
    }
}

/// How one listening socket serves what it accepts.
pub struct Accepting {
    pub answerer: Answerer,
    pub limits: HttpLimits,
    /// The places its sockets take (`--max-connections`); none for the probes' own port.
    pub admission: Option<Arc<Admission>>,
    /// TLS before HTTP (`--ssl-certfile`); none for plain HTTP.
    pub tls: Option<Arc<Tls>>,
}

/// The first wait after a failed accept; each failure in a row doubles it, up to the longest.
const BACKOFF: Duration = Duration::from_millis(10);
const LONGEST_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts until `stop` is cancelled; then the listening socket is closed, so new clients
/// are refused while the open connections finish. A client gets the handshake timeout to send
/// its whole HTTP request; one that sends nothing, half a request or too large a one is
/// disconnected (431 for too large). Over TLS, the same time is given to the TLS handshake
/// first (a client that never finishes it is cut off).
pub async fn accept_until(listener: TcpListener, accepting: Accepting, stop: CancellationToken) {
    let Accepting { answerer, limits, admission, tls } = accepting;
    let mut failures = Throttle::default();
    let mut backoff = BACKOFF;
    loop {
        if let Some(admission) = &admission {
            tokio::select! {
                () = stop.cancelled() => return,
                () = admission.until_room() => {}
            }
        }
        let (stream, remote) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if let Report::Log { also } = failures.failed(Instant::now()) {
                        tracing::warn!(
                            "accepting a connection failed: {error} (and {also} more time(s) since the last such \
                             line); the server backs off and retries: raise the open-file limit (ulimit -n) or \
                             lower --max-connections"
                        );
                    }
                    // Out of file descriptors, typically: wait a while, or until a connection ends.
                    let freed = async {
                        match &admission {
                            Some(admission) => admission.changed().notified().await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                        () = freed => {}
                    }
                    backoff = (backoff * 2).min(LONGEST_BACKOFF);
                    continue;
                }
            },
        };
        backoff = BACKOFF;
        if let Some(also) = failures.recovered(Instant::now()) {
            tracing::info!("accepting connections again ({also} more failed attempt(s) since the last warning)");
        }
        // Small frames must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let admitted = admission.as_ref().map(|admission| Arc::new(admission.admit()));
        // A WebSocket handshake takes the socket's place for the connection.
        let answering = answerer.clone();
        let place = admitted.clone();
        let encrypted = tls.is_some();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let (answerer, admitted) = (answering.clone(), place.clone());
            if encrypted {
                request.extensions_mut().insert(Encrypted);
            }
            async move { Ok::<_, Infallible>(answerer.answer(request, remote, admitted).await) }
        });
        // The settings loaded last (SIGHUP may load new ones) for this connection's handshake.
        let acceptor = tls.as_ref().map(|tls| tls.acceptor());
        tokio::spawn(async move {
            let served = match acceptor {
                None => http(&limits).serve_connection(TokioIo::new(stream), service).with_upgrades().await,
                Some(acceptor) => match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        http(&limits).serve_connection(TokioIo::new(stream), service).with_upgrades().await
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%remote, "TLS handshake failed: {error}");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake not finished within --handshake-timeout: cut off");
                        Ok(())
                    }
                },
            };
            if let Err(error) = served {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
            // Upgraded or closed: the handshake is over (an upgraded connection keeps its place).
            drop(admitted);
        });
    }
}

/// HTTP/1.1 with the request-head limits.
fn http(limits: &HttpLimits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.handshake_timeout).max_buf_size(limits.max_header_size);
    if limits.max_headers != DEFAULT_MAX_HEADERS {
        // hyper then keeps the headers on the heap rather than the stack: only when asked.
        http.max_headers(limits.max_headers);
    }
    http
}

/// hyper's own limit on header lines.
const DEFAULT_MAX_HEADERS: usize = 100;
