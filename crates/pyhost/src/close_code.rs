//! Close codes (RFC 6455 section 7.4.1) and the reasons the server sends with its own. Both
//! sides of the server speak them: the network side writes them into Close frames, the
//! interpreter side puts them into `WebSocketDisconnect`.

/// The conversation is over as both sides wanted: the handler returned, or `close()` without a
/// code.
pub const NORMAL: u16 = 1000;
/// The server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// The client broke the protocol (bad frames, bad fragments, a bad Close frame).
pub const PROTOCOL_ERROR: u16 = 1002;
/// Never sent: the client's Close frame carried no code.
pub const NO_STATUS: u16 = 1005;
/// Never sent: the connection ended without a Close frame.
pub const ABNORMAL: u16 = 1006;
/// A text message was not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// The connection is refused by policy (an easy-access parameter is missing or invalid).
pub const POLICY_VIOLATION: u16 = 1008;
/// A message is over `--max-message-size`.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// A handler or callback raised, or the client stopped answering keep-alive pings.
pub const INTERNAL_ERROR: u16 = 1011;
/// The server restarts (`--reload` replaced the code): the client may reconnect at once.
pub const SERVICE_RESTART: u16 = 1012;
/// The client did not read its broadcasts fast enough (slow consumer).
pub const TRY_AGAIN_LATER: u16 = 1013;

/// Why the server closes every connection at once, which its Close frames and the handlers'
/// `WebSocketDisconnect` say: a client told 1012 knows a server is there again right away,
/// one told 1001 does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// SIGINT or SIGTERM: the server stops.
    Shutdown,
    /// `--reload`: a worker with the new code has taken over from this one.
    Restart,
}

impl Departure {
    pub fn code(self) -> u16 {
        match self {
            Departure::Shutdown => GOING_AWAY,
            Departure::Restart => SERVICE_RESTART,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Departure::Shutdown => reason::SHUTTING_DOWN,
            Departure::Restart => reason::RESTARTING,
        }
    }
}

/// Whether an endpoint may put `code` in a Close frame (RFC 6455 section 7.4): the assigned
/// codes meant for the wire, and the ranges for libraries and applications.
pub fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The reasons the server gives in the Close frames it decides on itself.
pub mod reason {
    pub const SHUTTING_DOWN: &str = "server shutting down";
    pub const RESTARTING: &str = "server restarting with new code";
    pub const SLOW_CONSUMER: &str = "slow consumer";
    pub const KEEPALIVE_TIMEOUT: &str = "keepalive ping timeout";
    pub const INTERNAL_ERROR: &str = "internal error";
    pub const INVALID_PARAMETERS: &str = "invalid query parameters";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_meant_for_the_wire_are_sendable() {
        for code in
            [NORMAL, GOING_AWAY, PROTOCOL_ERROR, INVALID_PAYLOAD, SERVICE_RESTART, TRY_AGAIN_LATER, 1014, 3000, 4999]
        {
            assert!(sendable(code), "{code}");
        }
        for code in [0, 999, 1004, NO_STATUS, ABNORMAL, 1015, 1016, 2999, 5000] {
            assert!(!sendable(code), "{code}");
        }
    }

    #[test]
    fn a_restart_is_told_apart_from_a_shutdown() {
        assert_eq!((Departure::Shutdown.code(), Departure::Shutdown.reason()), (GOING_AWAY, reason::SHUTTING_DOWN));
        assert_eq!((Departure::Restart.code(), Departure::Restart.reason()), (SERVICE_RESTART, reason::RESTARTING));
        assert!(sendable(Departure::Restart.code()));
    }
}
