//! The names of what nodes share in Redis: one channel per endpoint and per room (subscribed
//! by the nodes that have members there), one per node (for `send_to`), and the sorted set of
//! live nodes. Pub/sub ignores Redis's database numbers, so the names carry the number from
//! the broker URL: apps on different databases of one Redis do not hear each other.

/// What a broadcast channel delivers to: an endpoint (by its route pattern), or one of its rooms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub endpoint: String,
    pub room: Option<String>,
}

pub struct Channels {
    prefix: String,
}

impl Channels {
    pub fn new(db: i64) -> Self {
        Self { prefix: format!("robyn:{db}:") }
    }

    /// `robyn:0:/chat` for an endpoint, `robyn:0:/chat room:lobby` for one of its rooms (a
    /// route pattern holds no space).
    pub fn of(&self, endpoint: &str, room: Option<&str>) -> String {
        match room {
            None => format!("{}{endpoint}", self.prefix),
            Some(room) => format!("{}{endpoint} room:{room}", self.prefix),
        }
    }

    /// The channel only the node tagged `node` subscribes to.
    pub fn node(&self, node: u32) -> String {
        format!("{}node:{node:08x}", self.prefix)
    }

    /// The prefix of the keys that hold the history of an endpoint (or of one of its rooms).
    pub fn history(&self, endpoint: &str, room: Option<&str>) -> String {
        match room {
            None => format!("{}history:{endpoint}", self.prefix),
            Some(room) => format!("{}history:{endpoint} room:{room}", self.prefix),
        }
    }

    /// The channel every node subscribes to for presence notes.
    pub fn presence(&self) -> String {
        format!("{}presence", self.prefix)
    }

    /// The sorted set of live nodes: tag (as 8 hex digits) scored by when its entry expires.
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_apart_per_database_endpoint_room_and_node() {
        let channels = Channels::new(0);
        let names = [
            channels.of("/chat", None),
            channels.of("/chat", Some("lobby")),
            channels.of("/news", Some("lobby")),
            channels.node(1),
            channels.node(0xffff_ffff),
            Channels::new(1).of("/chat", None),
            channels.nodes(),
            channels.presence(),
            channels.history("/chat", None),
            channels.history("/chat", Some("lobby")),
        ];
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
        assert_eq!(channels.of("/chat", Some("lobby")), "robyn:0:/chat room:lobby");
        assert_eq!(channels.node(0xab), "robyn:0:node:000000ab");
    }
}
