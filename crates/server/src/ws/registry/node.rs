//! Which process of the app this is, and the connection ids it hands out. The first 32 bits
//! of an id name the process that holds the connection (its node tag, random per process), so
//! `send_to` finds a connection's process from the id alone: no directory to keep in step, no
//! message every process must read. The rest is a random UUID v4, which the id stays.

/// This process's tag, and a source of ids that carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    tag: u32,
}

impl Node {
    /// A process of its own: a random tag (never 0), so two processes' ids never meet by
    /// construction but by a one-in-four-billion chance per pair.
    pub fn random() -> Self {
        loop {
            let tag = tag_of(uuid::Uuid::new_v4().as_u128());
            if tag != 0 {
                return Self { tag };
            }
        }
    }

    pub fn tag(self) -> u32 {
        self.tag
    }

    /// A new connection id: a UUID v4 whose first 32 bits are this node's tag.
    pub fn new_id(self) -> u128 {
        let random = uuid::Uuid::new_v4().as_u128();
        (u128::from(self.tag) << 96) | (random & ((1 << 96) - 1))
    }

    /// Whether `id` names one of this node's connections.
    pub fn holds(self, id: u128) -> bool {
        tag_of(id) == self.tag
    }
}

/// The node tag an id carries.
pub fn tag_of(id: u128) -> u32 {
    // The shift leaves the top 32 bits; the cast keeps exactly them.
    #[allow(clippy::cast_possible_truncation, reason = "the value has 32 bits after the shift")]
    let tag = (id >> 96) as u32;
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_node_and_stay_uuid_v4() {
        let node = Node::random();
        let other = Node::random();
        for _ in 0..100 {
            let id = node.new_id();
            assert!(node.holds(id));
            assert_eq!(tag_of(id), node.tag());
            assert_ne!(node.new_id(), id);
            let uuid = uuid::Uuid::from_u128(id);
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
        }
        assert!(other == node || !other.holds(node.new_id()));
    }
}
