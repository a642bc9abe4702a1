//! A connection the interpreter side knows of, from before its socket is upgraded: registered,
//! its `Open` event sent, maybe waiting for the app's decision on the handshake. It becomes
//! the socket task's driver; dropped before that (refused, the upgrade failed, the client
//! left), it still tells the interpreter side and frees its place.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use pyhost::bridge::{Decision, Event, Inbound, Opening, Request};
use pyhost::close_code;
use tokio::sync::oneshot;

use crate::admission::Place;
use crate::ws::Shared;
use crate::ws::registry::{Link, LinkSettings};

pub struct Opened {
    parts: Option<Parts>,
    /// The app's decision on the handshake, when it makes one.
    decision: Option<oneshot::Receiver<Decision>>,
}

/// What the driver takes over.
pub(super) struct Parts {
    pub state: Arc<Shared>,
    pub link: Arc<Link>,
    pub place: Place,
    pub access: Option<Box<Access>>,
}

/// What the access log line says of a connection, kept only while access lines are logged.
pub(super) struct Access {
    pub client: SocketAddr,
    pub path: Box<str>,
    pub subprotocol: Option<Box<str>>,
    pub opened: Instant,
    /// Messages from the client, and to it.
    pub received: u64,
    pub sent: u64,
}

impl Access {
    /// One line per connection, when it ends.
    pub fn log(&self, state: &Shared, code: u16) {
        let Self { client, path, subprotocol, opened, received, sent } = self;
        let subprotocol = subprotocol.as_deref().unwrap_or("-");
        let seconds = opened.elapsed().as_secs_f64();
        let line = format_args!(
            "{client} {path} subprotocol={subprotocol} closed {code} after {seconds:.3} s, {received} in, {sent} out"
        );
        if state.access_log {
            tracing::info!(target: "robyn_ws_server::access", "{line}");
        } else {
            tracing::debug!(target: "robyn_ws_server::access", "{line}");
        }
    }
}

impl Opened {
    /// Registers a connection on `endpoint` and tells the interpreter side; with `decides`,
    /// the handshake waits for [`Opened::decision`].
    pub fn open(state: Arc<Shared>, endpoint: usize, request: Request, decides: bool, place: Place) -> Self {
        let key = state.next_key();
        let id = state.registry.node.new_id();
        let (tell, decision) = if decides {
            let (tell, decision) = oneshot::channel();
            (Some(tell), Some(decision))
        } else {
            (None, None)
        };
        let limits = &state.limits;
        let settings = LinkSettings {
            key,
            id,
            endpoint,
            capacity: limits.send_queue,
            byte_capacity: limits.send_queue_bytes,
            receive_limit: limits.receive_buffer,
            decision: tell,
        };
        let link = Arc::new(Link::new(settings, state.registry.clone()));
        state.registry.insert(&link);
        let access = state.logs_access().then(|| {
            Box::new(Access {
                client: request.client,
                path: request.path.as_str().into(),
                subprotocol: request.subprotocol.as_deref().map(Into::into),
                opened: Instant::now(),
                received: 0,
                sent: 0,
            })
        });
        // At debug, the opening too (the access line says the rest when the connection ends).
        tracing::debug!(target: "robyn_ws_server::access", "{} {} opened", request.client, request.path);
        let opening = Opening { endpoint, id, request: Box::new(request), decides, link: link.clone() };
        state.bridge.push(Event::Conn(key, Inbound::Open(Box::new(opening))));
        Self { parts: Some(Parts { state, link, place, access }), decision }
    }

    /// The app's decision, to wait for when the endpoint decides on its handshakes.
    pub fn decision(&mut self) -> Option<oneshot::Receiver<Decision>> {
        self.decision.take()
    }

    pub(super) fn into_parts(mut self) -> Parts {
        self.parts.take().expect("an Opened is taken over once")
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(Parts { state, link, .. }) = self.parts.take() {
            let reason = String::new();
            state.bridge.push(Event::Conn(link.key, Inbound::Disconnected { code: close_code::ABNORMAL, reason }));
            link.set_gone();
            state.registry.remove(&link);
        }
    }
}
