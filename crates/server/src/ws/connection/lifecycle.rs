//! The close lifecycle of one connection, as its socket task lives it: the phase it is in,
//! what moves it on, and what the interpreter side has been told. Pure state, no I/O: the task
//! reports what happened, and [`Lifecycle::on`] is the one place a phase changes.
//!
//! | phase | what the task does | moved on by |
//! |---|---|---|
//! | `Open` | reads, writes the app's frames, pings | the app's or the server's close, the client's Close, a failed read, a lost keep-alive |
//! | `Closing` | reads, writes what is queued, then its Close frame | `CloseWritten`, the client's Close |
//! | `CloseSent` | reads, waiting for the client's Close | the client's Close or end of stream |
//! | `Answering` | flushes the layer's answer, reads until the stream ends | `StreamEnded` |
//! | `Failing` | writes and flushes the Close frame, reads nothing | `Flushed` |
//! | `Lingering` | shuts its write side, drains the client's input | `Lingered` |
//! | `Ended` | nothing: the task returns | |
//!
//! From any phase, a failed write or the close timeout ends the connection at once.

use pyhost::close_code::{self, reason};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::ws::registry::close_frame;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketPhase {
    /// Messages flow both ways.
    Open,
    /// The server decided to close: what is still queued goes out, then `frame`.
    Closing { frame: CloseFrame },
    /// Our Close frame is written; the client's answer is awaited.
    CloseSent,
    /// The client closed first: the layer's answer goes out, then the client's stream ends.
    Answering,
    /// The client broke the protocol (or stopped answering pings): `frame` goes out, or the
    /// layer's own Close frame when it queued one (`None`, also once `frame` is written);
    /// nothing more is read.
    Failing { frame: Option<CloseFrame> },
    /// Nothing more is said: the write side is shut and the client's input drained until it
    /// closes, so unread input cannot turn our Close frame into a TCP reset.
    Lingering,
    /// The socket is done with.
    Ended,
}

/// What the interpreter side knows of the connection's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    /// Nothing: messages are delivered.
    Nothing,
    /// The app closed the connection itself: messages are dropped, and only the final
    /// `Disconnected` (for the interpreter side to forget the connection) is owed.
    AppClosed,
    /// `Disconnected` is sent: always a connection's last event.
    Disconnected,
}

/// What the socket task saw or did.
#[derive(Clone, Debug)]
pub enum Happening {
    /// The app asked for the close; everything it queued before is taken.
    AppCloses(CloseFrame),
    /// The server closes on its own (a slow consumer, the end of the shutdown grace period).
    ServerCloses(CloseFrame),
    /// A pinged client did not answer in time.
    KeepaliveLost,
    /// A Close frame from the client.
    PeerClosed(Option<CloseFrame>),
    /// The client's WebSocket stream ended: after its Close was answered, or a bare FIN.
    StreamEnded,
    /// A read failed with `code`; `ABNORMAL` means the connection itself is gone.
    ReadFailed { code: u16, close_queued: bool },
    /// A write or flush failed: the connection is gone.
    WriteFailed,
    /// Our Close frame is handed to the layer.
    CloseWritten,
    /// What was written, and what the layer owed, is in the socket.
    Flushed,
    /// The client closed its side while we lingered.
    Lingered,
    /// The close timeout ran out.
    TimedOut,
}

/// What the task has to do about a happening, besides moving on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Queue `Disconnected { code, reason }` for the interpreter side.
    pub tell: Option<(u16, String)>,
    /// The client gets no more of the app's frames: drop what is queued, refuse the rest.
    pub stop_sending: bool,
}

#[derive(Debug)]
pub struct Lifecycle {
    phase: SocketPhase,
    told: Told,
    /// The code of the first Close frame sent or received.
    closed_with: Option<u16>,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self { phase: SocketPhase::Open, told: Told::Nothing, closed_with: None }
    }

    /// The code of the closing handshake: of the first Close frame sent or received, 1006 when
    /// there was none.
    pub fn close_code(&self) -> u16 {
        self.closed_with.unwrap_or(close_code::ABNORMAL)
    }

    pub fn phase(&self) -> &SocketPhase {
        &self.phase
    }

    /// Whether the client's messages go to the handler.
    pub fn delivers(&self) -> bool {
        self.told == Told::Nothing
    }

    /// Whether WebSocket frames are still read from the client.
    pub fn reads(&self) -> bool {
        matches!(
            self.phase,
            SocketPhase::Open | SocketPhase::Closing { .. } | SocketPhase::CloseSent | SocketPhase::Answering
        )
    }

    /// The Close frame to hand to the layer now, if the phase has one due. In `Closing` it is
    /// due once the queued frames are written, which the caller knows.
    pub fn close_due(&self) -> Option<&CloseFrame> {
        match &self.phase {
            SocketPhase::Closing { frame } | SocketPhase::Failing { frame: Some(frame) } => Some(frame),
            _ => None,
        }
    }

    /// Moves the lifecycle on. Happenings that mean nothing in the current phase (a flush
    /// while open, a timeout once ended) change nothing.
    pub fn on(&mut self, happening: Happening) -> Outcome {
        use Happening as H;
        use SocketPhase as P;
        let abnormal = || (close_code::ABNORMAL, String::new());
        match (&self.phase, &happening) {
            (P::Closing { frame } | P::Failing { frame: Some(frame) }, H::CloseWritten) => {
                self.closed_with.get_or_insert(frame.code.into());
            }
            (_, H::PeerClosed(frame)) => {
                self.closed_with.get_or_insert(peer_code(frame.clone()).0);
            }
            _ => {}
        }
        let (next, tell, stop_sending) = match (&self.phase, happening) {
            (P::Ended, _) => return Outcome::default(),
            (_, H::WriteFailed | H::TimedOut) => (P::Ended, Some(abnormal()), true),
            (_, H::ReadFailed { code: close_code::ABNORMAL, .. }) => (P::Ended, Some(abnormal()), true),

            (P::Open, H::AppCloses(frame)) => {
                if self.told == Told::Nothing {
                    self.told = Told::AppClosed;
                }
                (P::Closing { frame }, None, false)
            }
            (P::Open, H::ServerCloses(frame)) => {
                let tell = (u16::from(frame.code), frame.reason.to_string());
                (P::Closing { frame }, Some(tell), true)
            }
            (P::Open, H::KeepaliveLost) => {
                let frame = close_frame(close_code::INTERNAL_ERROR, reason::KEEPALIVE_TIMEOUT);
                (
                    P::Failing { frame: Some(frame) },
                    Some((close_code::ABNORMAL, reason::KEEPALIVE_TIMEOUT.into())),
                    true,
                )
            }

            // The client spoke first (or our Close is still queued): the layer answers it.
            (P::Open | P::Closing { .. }, H::PeerClosed(frame)) => (P::Answering, Some(peer_code(frame)), true),
            // The client answered our Close (or sent its own as ours left): the handshake is
            // complete, and nothing more may be written, not even a layer's answer.
            (P::CloseSent, H::PeerClosed(frame)) => (P::Lingering, Some(peer_code(frame)), true),

            (P::Open | P::Closing { .. } | P::CloseSent, H::StreamEnded) => (P::Lingering, Some(abnormal()), true),
            (P::Answering, H::StreamEnded) => (P::Lingering, None, true),

            (P::Open | P::Closing { .. }, H::ReadFailed { code, close_queued }) => {
                let frame = (!close_queued).then(|| close_frame(code, ""));
                (P::Failing { frame }, Some((code, String::new())), true)
            }
            // Our Close, or our answer to the client's, is already out: fail without another.
            (P::CloseSent | P::Answering, H::ReadFailed { code, .. }) => {
                (P::Lingering, Some((code, String::new())), true)
            }

            (P::Closing { .. }, H::CloseWritten) => (P::CloseSent, None, false),
            (P::Failing { frame: Some(_) }, H::CloseWritten) => (P::Failing { frame: None }, None, true),
            (P::Failing { frame: None }, H::Flushed) => (P::Lingering, None, true),
            (P::Lingering, H::Lingered) => (P::Ended, None, true),

            (phase, _) => (phase.clone(), None, false),
        };
        self.phase = next;
        Outcome { tell: tell.and_then(|tell| self.tell(tell)), stop_sending }
    }

    fn tell(&mut self, (code, reason): (u16, String)) -> Option<(u16, String)> {
        if self.told != Told::Nothing {
            return None;
        }
        self.told = Told::Disconnected;
        Some((code, reason))
    }

    /// The interpreter side's last event, if still owed once the socket is done with: the
    /// code it sees for a connection that ended without telling it (1006), or 1000 for one
    /// the app closed (it knows; it only has to forget the connection).
    pub fn last_word(&mut self) -> Option<(u16, String)> {
        let code = match self.told {
            Told::Nothing => close_code::ABNORMAL,
            Told::AppClosed => close_code::NORMAL,
            Told::Disconnected => return None,
        };
        self.told = Told::Disconnected;
        Some((code, String::new()))
    }
}

/// The code and reason of a client's Close frame; 1005 when it carried none.
fn peer_code(frame: Option<CloseFrame>) -> (u16, String) {
    frame.map_or((close_code::NO_STATUS, String::new()), |frame| (frame.code.into(), frame.reason.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(code: u16, reason: &str) -> CloseFrame {
        close_frame(code, reason)
    }

    /// Runs `happenings` from `Open`; returns the phases passed through and every tell.
    fn run(happenings: Vec<Happening>) -> (Vec<SocketPhase>, Vec<(u16, String)>, Lifecycle) {
        let mut lifecycle = Lifecycle::new();
        let mut phases = Vec::new();
        let mut tells = Vec::new();
        for happening in happenings {
            tells.extend(lifecycle.on(happening).tell);
            phases.push(lifecycle.phase().clone());
        }
        (phases, tells, lifecycle)
    }

    #[test]
    fn the_apps_close_is_written_once_and_the_clients_answer_ends_the_handshake() {
        let (phases, tells, mut lifecycle) = run(vec![
            Happening::AppCloses(close(4000, "bye")),
            Happening::CloseWritten,
            Happening::Flushed,
            Happening::PeerClosed(Some(close(4000, "bye"))),
            Happening::Lingered,
        ]);
        assert_eq!(
            phases,
            [
                SocketPhase::Closing { frame: close(4000, "bye") },
                SocketPhase::CloseSent,
                SocketPhase::CloseSent,
                SocketPhase::Lingering,
                SocketPhase::Ended
            ]
        );
        assert!(tells.is_empty(), "the app knows: no Disconnected before the end");
        assert_eq!(lifecycle.close_code(), 4000);
        assert_eq!(lifecycle.last_word(), Some((close_code::NORMAL, String::new())));
        assert_eq!(lifecycle.last_word(), None, "the last word is said once");
    }

    #[test]
    fn the_clients_close_is_answered_by_the_layer_and_told_with_its_code() {
        let (phases, tells, mut lifecycle) =
            run(vec![Happening::PeerClosed(Some(close(4321, "done"))), Happening::StreamEnded, Happening::Lingered]);
        assert_eq!(phases, [SocketPhase::Answering, SocketPhase::Lingering, SocketPhase::Ended]);
        assert_eq!(tells, [(4321, "done".to_owned())]);
        assert_eq!(lifecycle.last_word(), None);
    }

    #[test]
    fn a_close_frame_without_a_code_is_told_as_1005() {
        let (_, tells, _) = run(vec![Happening::PeerClosed(None)]);
        assert_eq!(tells, [(close_code::NO_STATUS, String::new())]);
    }

    #[test]
    fn a_clients_close_crossing_ours_completes_the_handshake_without_another_close() {
        // Ours is written when theirs arrives: no answer may follow.
        let (phases, _, _) =
            run(vec![Happening::AppCloses(close(1000, "")), Happening::CloseWritten, Happening::PeerClosed(None)]);
        assert_eq!(phases.last(), Some(&SocketPhase::Lingering));
        // Ours is still queued when theirs arrives: the layer's answer replaces ours.
        let mut lifecycle = Lifecycle::new();
        lifecycle.on(Happening::AppCloses(close(1000, "")));
        let outcome = lifecycle.on(Happening::PeerClosed(Some(close(1001, ""))));
        assert_eq!(lifecycle.phase(), &SocketPhase::Answering);
        assert!(lifecycle.close_due().is_none(), "our Close is no longer due");
        assert_eq!(
            outcome,
            Outcome { tell: None, stop_sending: true },
            "the app closed: it is not told the client's code"
        );
    }

    #[test]
    fn a_server_close_tells_the_handler_at_once_and_drops_the_queue() {
        let mut lifecycle = Lifecycle::new();
        let outcome = lifecycle.on(Happening::ServerCloses(close(close_code::TRY_AGAIN_LATER, reason::SLOW_CONSUMER)));
        assert_eq!(outcome.tell, Some((close_code::TRY_AGAIN_LATER, reason::SLOW_CONSUMER.to_owned())));
        assert!(outcome.stop_sending);
        assert!(!lifecycle.delivers());
        assert_eq!(lifecycle.close_due(), Some(&close(close_code::TRY_AGAIN_LATER, reason::SLOW_CONSUMER)));
    }

    #[test]
    fn a_failed_read_writes_our_close_or_flushes_the_layers_then_lingers() {
        let (phases, tells, _) = run(vec![
            Happening::ReadFailed { code: close_code::PROTOCOL_ERROR, close_queued: false },
            Happening::CloseWritten,
            Happening::Flushed,
            Happening::Lingered,
        ]);
        assert_eq!(
            phases,
            [
                SocketPhase::Failing { frame: Some(close(close_code::PROTOCOL_ERROR, "")) },
                SocketPhase::Failing { frame: None },
                SocketPhase::Lingering,
                SocketPhase::Ended
            ]
        );
        assert_eq!(tells, [(close_code::PROTOCOL_ERROR, String::new())]);
        let (phases, _, _) = run(vec![
            Happening::ReadFailed { code: close_code::INVALID_PAYLOAD, close_queued: true },
            Happening::Flushed,
        ]);
        assert_eq!(phases, [SocketPhase::Failing { frame: None }, SocketPhase::Lingering]);
    }

    #[test]
    fn a_failed_read_after_our_close_adds_no_close_of_its_own() {
        let (phases, _, _) = run(vec![
            Happening::AppCloses(close(1000, "")),
            Happening::CloseWritten,
            Happening::ReadFailed { code: close_code::PROTOCOL_ERROR, close_queued: false },
        ]);
        assert_eq!(phases.last(), Some(&SocketPhase::Lingering));
    }

    #[test]
    fn a_lost_keepalive_closes_with_1011_and_tells_the_handler_1006() {
        let mut lifecycle = Lifecycle::new();
        let outcome = lifecycle.on(Happening::KeepaliveLost);
        assert_eq!(outcome.tell, Some((close_code::ABNORMAL, reason::KEEPALIVE_TIMEOUT.to_owned())));
        assert_eq!(lifecycle.close_due(), Some(&close(close_code::INTERNAL_ERROR, reason::KEEPALIVE_TIMEOUT)));
        assert!(!lifecycle.reads());
    }

    #[test]
    fn a_vanished_socket_ends_every_phase_at_once() {
        for setup in [
            vec![],
            vec![Happening::AppCloses(close(1000, ""))],
            vec![Happening::AppCloses(close(1000, "")), Happening::CloseWritten],
            vec![Happening::PeerClosed(None)],
            vec![Happening::ReadFailed { code: close_code::PROTOCOL_ERROR, close_queued: true }],
        ] {
            for ending in [
                Happening::WriteFailed,
                Happening::TimedOut,
                Happening::ReadFailed { code: close_code::ABNORMAL, close_queued: false },
            ] {
                let mut happenings = setup.clone();
                happenings.push(ending);
                let (phases, tells, mut lifecycle) = run(happenings);
                assert_eq!(phases.last(), Some(&SocketPhase::Ended));
                let told = tells.len() + usize::from(lifecycle.last_word().is_some());
                assert_eq!(told, 1, "exactly one Disconnected, whatever happened: {phases:?}");
            }
        }
    }

    #[test]
    fn a_bare_fin_is_told_as_1006() {
        let (phases, tells, _) = run(vec![Happening::StreamEnded]);
        assert_eq!(phases, [SocketPhase::Lingering]);
        assert_eq!(tells, [(close_code::ABNORMAL, String::new())]);
    }

    #[test]
    fn nothing_moves_an_ended_connection() {
        let (phases, _, _) =
            run(vec![Happening::WriteFailed, Happening::PeerClosed(None), Happening::AppCloses(close(1000, ""))]);
        assert_eq!(phases, [SocketPhase::Ended, SocketPhase::Ended, SocketPhase::Ended]);
    }

    #[test]
    fn reading_stops_once_failing() {
        let mut lifecycle = Lifecycle::new();
        for (happening, reads) in [
            (Happening::Flushed, true),
            (Happening::AppCloses(close(1000, "")), true),
            (Happening::CloseWritten, true),
            (Happening::PeerClosed(None), false),
        ] {
            lifecycle.on(happening);
            assert_eq!(lifecycle.reads(), reads, "{:?}", lifecycle.phase());
        }
    }
}
