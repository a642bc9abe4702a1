//! Where a connection stands for its handler: pure state, no Python. The Python-facing
//! connection asks it what to do and does the side effects (failing futures, leaving the
//! broadcast, the last call to the network side).
//!
//! | phase | receives and sends | moved on by |
//! |---|---|---|
//! | `Open` | work | `close()`, the server going away, the network side ending it, `finish`, `reject` |
//! | `Over` | raise `WebSocketDisconnect` (once the inbox is empty) | `finish`, `reject` |
//! | `Finished` | raise | nothing: the last call to the network side is made |

use crate::close_code::{self, reason};

/// Who ended the conversation, which decides the Close frame of the connection's last call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ender {
    /// `websocket.close(code, reason)`, or the handler finishing: that code.
    Handler,
    /// The server is going away: 1001, unless the handler failed.
    Shutdown,
    /// The network side ended it (the client closed or vanished, a slow consumer): it needs
    /// no Close frame from here.
    Network,
}

/// Why the conversation is over: what `WebSocketDisconnect` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ending {
    pub by: Ender,
    pub code: u16,
    pub reason: String,
}

/// How the handler's side is done with the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Finish {
    /// The handler (and `on_close`) returned.
    Returned,
    /// An exception escaped the handler, `on_connect` or `on_close`.
    Failed,
    /// Its easy-access parameters did not resolve: the handler never ran.
    Rejected,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum HandlerPhase {
    /// Receives and sends work; `joined` once broadcasts reach the connection (after
    /// `on_connect`'s greeting is queued).
    Open { joined: bool },
    /// The conversation is over for the handler.
    Over(Ending),
    /// The connection's last call to the network side is made.
    Finished(Ending),
}

impl HandlerPhase {
    pub fn new() -> Self {
        HandlerPhase::Open { joined: false }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, HandlerPhase::Open { .. })
    }

    /// What the handler's receives and sends raise, once the conversation is over.
    pub fn ending(&self) -> Option<&Ending> {
        match self {
            HandlerPhase::Open { .. } => None,
            HandlerPhase::Over(ending) | HandlerPhase::Finished(ending) => Some(ending),
        }
    }

    /// Whether a message arriving now is dropped: the handler closed and wants no more.
    pub fn drops_messages(&self) -> bool {
        self.ending().is_some_and(|ending| ending.by == Ender::Handler)
    }

    /// Broadcasts reach the connection from now on; true when that is new.
    pub fn join(&mut self) -> bool {
        match self {
            HandlerPhase::Open { joined } => !std::mem::replace(joined, true),
            HandlerPhase::Over(_) | HandlerPhase::Finished(_) => false,
        }
    }

    /// The one way out of `Open`. Answers `Some(was_joined)` when the conversation ends now
    /// (the caller fails what waits and leaves the broadcast). Once over, only the network side
    /// going away is still recorded: the connection's last call then asks for no Close frame.
    pub fn end(&mut self, by: Ender, code: u16, reason: String) -> Option<bool> {
        match self {
            HandlerPhase::Open { joined } => {
                let was_joined = *joined;
                *self = HandlerPhase::Over(Ending { by, code, reason });
                Some(was_joined)
            }
            HandlerPhase::Over(ending) | HandlerPhase::Finished(ending) => {
                if by == Ender::Network {
                    ending.by = Ender::Network;
                }
                None
            }
        }
    }

    /// The Close frame the connection's last call asks for: 1008 for a rejected connection,
    /// else the handler's own `close()` code, 1011 after a failure, 1001 when the server is
    /// going away (1012 when it restarts), 1000 for a handler that returned. None once finished, or when the network
    /// side ended the connection itself.
    pub fn closing(&self, how: Finish) -> Option<(u16, String)> {
        match (self, how) {
            (HandlerPhase::Finished(_) | HandlerPhase::Over(Ending { by: Ender::Network, .. }), _) => None,
            (_, Finish::Rejected) => Some((close_code::POLICY_VIOLATION, reason::INVALID_PARAMETERS.to_owned())),
            (HandlerPhase::Over(Ending { by: Ender::Handler, code, reason }), _) => Some((*code, reason.clone())),
            (_, Finish::Failed) => Some((close_code::INTERNAL_ERROR, reason::INTERNAL_ERROR.to_owned())),
            // 1001, or 1012 when the server restarts: what the handler was told.
            (HandlerPhase::Over(Ending { by: Ender::Shutdown, code, reason }), Finish::Returned) => {
                Some((*code, reason.clone()))
            }
            (HandlerPhase::Open { .. }, Finish::Returned) => Some((close_code::NORMAL, String::new())),
        }
    }

    /// After the last call: nothing moves the connection any more.
    pub fn finish(&mut self) {
        if let HandlerPhase::Over(ending) = self {
            *self = HandlerPhase::Finished(ending.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn over(by: Ender, code: u16, reason: &str) -> HandlerPhase {
        let mut phase = HandlerPhase::new();
        phase.end(by, code, reason.to_owned());
        phase
    }

    #[test]
    fn a_handler_that_returns_closes_with_1000_and_one_that_fails_with_1011() {
        assert_eq!(HandlerPhase::new().closing(Finish::Returned), Some((close_code::NORMAL, String::new())));
        assert_eq!(
            HandlerPhase::new().closing(Finish::Failed),
            Some((close_code::INTERNAL_ERROR, reason::INTERNAL_ERROR.to_owned()))
        );
    }

    #[test]
    fn the_handlers_own_close_code_wins_even_over_a_failure() {
        let phase = over(Ender::Handler, 4001, "later");
        assert_eq!(phase.closing(Finish::Returned), Some((4001, "later".to_owned())));
        assert_eq!(phase.closing(Finish::Failed), Some((4001, "later".to_owned())));
        assert!(phase.drops_messages());
    }

    #[test]
    fn going_away_closes_with_1001_unless_the_handler_failed() {
        let phase = over(Ender::Shutdown, close_code::GOING_AWAY, reason::SHUTTING_DOWN);
        assert_eq!(phase.closing(Finish::Returned), Some((close_code::GOING_AWAY, reason::SHUTTING_DOWN.to_owned())));
        assert_eq!(phase.closing(Finish::Failed).map(|(code, _)| code), Some(close_code::INTERNAL_ERROR));
        assert!(!phase.drops_messages(), "messages that arrived before still reach the handler");
    }

    #[test]
    fn a_restart_closes_with_1012() {
        let phase = over(Ender::Shutdown, close_code::SERVICE_RESTART, reason::RESTARTING);
        assert_eq!(phase.closing(Finish::Returned), Some((close_code::SERVICE_RESTART, reason::RESTARTING.to_owned())));
    }

    #[test]
    fn a_connection_the_network_side_ended_asks_for_no_close() {
        let phase = over(Ender::Network, 4321, "bye");
        for how in [Finish::Returned, Finish::Failed, Finish::Rejected] {
            assert_eq!(phase.closing(how), None);
        }
        assert_eq!(phase.ending(), Some(&Ending { by: Ender::Network, code: 4321, reason: "bye".into() }));
    }

    #[test]
    fn the_network_side_leaving_after_close_keeps_the_handlers_code_and_drops_the_close() {
        let mut phase = over(Ender::Handler, 4001, "later");
        assert_eq!(phase.end(Ender::Network, close_code::ABNORMAL, String::new()), None);
        assert_eq!(phase.ending().map(|ending| ending.code), Some(4001), "the handler's view is unchanged");
        assert_eq!(phase.closing(Finish::Returned), None);
    }

    #[test]
    fn a_rejected_connection_closes_with_1008_even_while_going_away() {
        assert_eq!(
            HandlerPhase::new().closing(Finish::Rejected).map(|(code, _)| code),
            Some(close_code::POLICY_VIOLATION)
        );
        let going = over(Ender::Shutdown, close_code::GOING_AWAY, reason::SHUTTING_DOWN);
        assert_eq!(going.closing(Finish::Rejected).map(|(code, _)| code), Some(close_code::POLICY_VIOLATION));
    }

    #[test]
    fn ending_reports_the_broadcast_membership_once() {
        let mut phase = HandlerPhase::new();
        assert!(phase.join());
        assert!(!phase.join(), "joined once");
        assert_eq!(phase.end(Ender::Shutdown, close_code::GOING_AWAY, String::new()), Some(true));
        assert_eq!(phase.end(Ender::Handler, 4000, String::new()), None, "over already");
        assert!(!phase.join(), "no broadcasts once over");
    }

    #[test]
    fn nothing_moves_a_finished_connection_but_the_network_leaving() {
        let mut phase = over(Ender::Handler, close_code::NORMAL, "");
        phase.finish();
        assert_eq!(phase.closing(Finish::Returned), None, "the last call is made once");
        assert_eq!(phase.end(Ender::Shutdown, close_code::GOING_AWAY, String::new()), None);
        assert_eq!(phase.ending().map(|ending| ending.by), Some(Ender::Handler));
        phase.end(Ender::Network, close_code::NORMAL, String::new());
        assert_eq!(phase.ending().map(|ending| ending.by), Some(Ender::Network));
    }
}
