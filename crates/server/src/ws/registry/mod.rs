//! The open connections of each endpoint, their rooms, and broadcast over them. Each
//! connection is a [`Link`]: its bounded outbound queue, shared by its socket task and the
//! interpreter side. The registry is also the app's [`Hub`]: `send_to` by id, broadcast to an
//! endpoint or a room from any coroutine.

mod fabric;
mod histories;
pub mod history;
mod link;
pub mod node;
pub mod presence;
mod users;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use pyhost::bridge::{Bridge, ConnKey, Frame, Hub, Missed, Now, Token};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

pub use fabric::Fabric;
pub use link::{Closing, Link, LinkSettings, close_frame, message};

use crate::metrics::{Metrics, Snapshot};
use crate::ws::registry::node::{Node, tag_of};
use pyhost::locks::{read, write};

type Links = HashMap<ConnKey, Arc<Link>>;

pub struct Registry {
    /// This process, which the ids of its connections name.
    pub node: Node,
    /// What `/metrics` reports of this process.
    pub metrics: Metrics,
    /// Largest broadcast a handler may make, in bytes (`--max-broadcast-size`).
    max_broadcast: usize,
    /// Each endpoint's pattern, by index: how other processes of the app name it.
    patterns: Vec<String>,
    by_pattern: HashMap<String, usize>,
    /// The other processes, once joined (`--processes`, `--broker`).
    fabric: OnceLock<Arc<dyn Fabric>>,
    endpoints: Vec<RwLock<Links>>,
    /// Each endpoint's rooms, by name, with their members.
    rooms: Vec<RwLock<HashMap<Box<str>, Links>>>,
    by_id: RwLock<HashMap<u128, Arc<Link>>>,
    live: AtomicUsize,
    /// Notified whenever a connection comes or goes.
    changed: Notify,
    /// The counted connections of each identified user here (`send_to_user`).
    users: RwLock<HashMap<Box<str>, Vec<Arc<Link>>>>,
    /// Who is present where, across the cluster.
    presence: Mutex<presence::Presence>,
    /// Told when a user may have started to linger (their leave falls due later).
    lingering: Notify,
    /// Where joins and leaves are announced (the app's `on_presence`), and the answers to
    /// the app's questions that come later.
    announcer: OnceLock<Arc<Bridge>>,
    /// What each endpoint's history keeps (None: it keeps none).
    keeps: OnceLock<Vec<Option<history::Keep>>>,
    /// Where questions to the fabric wait for their answers.
    runtime: OnceLock<tokio::runtime::Handle>,
    /// The histories, when this process keeps them itself.
    logs: Mutex<history::Logs>,
    /// Connections recovering now: while there are any, kept broadcasts look for them.
    recovering: AtomicUsize,
}

/// How long a user whose last connection closed stays present, unless `--presence-grace` says.
pub const PRESENCE_GRACE: Duration = Duration::from_secs(5);

impl Registry {
    /// `patterns[i]` is endpoint `i`'s route pattern.
    pub fn new(patterns: Vec<String>, node: Node, max_broadcast: usize) -> Self {
        let endpoint_count = patterns.len();
        Self {
            node,
            max_broadcast,
            metrics: Metrics::default(),
            by_pattern: patterns.iter().enumerate().map(|(index, pattern)| (pattern.clone(), index)).collect(),
            patterns,
            fabric: OnceLock::new(),
            endpoints: (0..endpoint_count).map(|_| RwLock::new(HashMap::new())).collect(),
            rooms: (0..endpoint_count).map(|_| RwLock::new(HashMap::new())).collect(),
            by_id: RwLock::new(HashMap::new()),
            live: AtomicUsize::new(0),
            changed: Notify::new(),
            users: RwLock::new(HashMap::new()),
            presence: Mutex::new(presence::Presence::new(node.tag(), PRESENCE_GRACE)),
            lingering: Notify::new(),
            announcer: OnceLock::new(),
            keeps: OnceLock::new(),
            runtime: OnceLock::new(),
            logs: Mutex::new(HashMap::new()),
            recovering: AtomicUsize::new(0),
        }
    }

    /// Every served pattern with its endpoint (the last one registered for a pattern).
    pub fn patterns(&self) -> impl Iterator<Item = (&str, usize)> {
        self.by_pattern.iter().map(|(pattern, &endpoint)| (pattern.as_str(), endpoint))
    }

    /// Joins this process to the others: from now on what is broadcast here reaches theirs.
    pub fn join_fabric(&self, fabric: Arc<dyn Fabric>) {
        if self.fabric.set(fabric).is_ok() {
            self.presence_rejoined();
        }
    }

    pub fn has_fabric(&self) -> bool {
        self.fabric.get().is_some()
    }

    /// Whether the other processes hear this one (always, when it is alone).
    pub fn hears_others(&self) -> bool {
        self.fabric.get().is_none_or(|fabric| fabric.connected())
    }

    pub fn insert(&self, link: &Arc<Link>) {
        let first = {
            let mut links = write(&self.endpoints[link.endpoint]);
            links.insert(link.key, link.clone());
            links.len() == 1
        };
        write(&self.by_id).insert(link.id, link.clone());
        self.live.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        if first && let Some(fabric) = self.fabric.get() {
            fabric.interest(&self.patterns[link.endpoint], None, true);
        }
    }

    /// Forgets a connection, its id and its rooms.
    pub fn remove(&self, link: &Link) {
        let last = {
            let mut links = write(&self.endpoints[link.endpoint]);
            if links.remove(&link.key).is_none() {
                return;
            }
            links.is_empty()
        };
        write(&self.by_id).remove(&link.id);
        let membership = std::mem::take(&mut *link.membership());
        if let Some(user) = membership.counted_user() {
            self.recount(link, &membership.rooms, Some(user), None);
        }
        for room in membership.rooms {
            self.forget_member(link.endpoint, &room, link.key);
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        if last && let Some(fabric) = self.fabric.get() {
            fabric.interest(&self.patterns[link.endpoint], None, false);
        }
    }

    pub fn join_room(&self, link: &Link, room: &str) {
        // The room holds the registry's own handle on the link; a connection that has ended
        // joins nothing.
        let Some(member) = read(&self.endpoints[link.endpoint]).get(&link.key).cloned() else { return };
        let mut membership = link.membership();
        if membership.rooms.iter().any(|name| &**name == room) {
            return;
        }
        membership.rooms.push(room.into());
        let user = membership.counted_user().map(str::to_owned);
        drop(membership);
        if let Some(user) = user {
            self.count_presence(link.endpoint, [Some(room)].into_iter(), &user, true);
        }
        let created = {
            let mut rooms = write(&self.rooms[link.endpoint]);
            let members = rooms.entry(room.into()).or_default();
            members.insert(link.key, member);
            members.len() == 1
        };
        if created && let Some(fabric) = self.fabric.get() {
            fabric.interest(&self.patterns[link.endpoint], Some(room), true);
        }
    }

    pub fn leave_room(&self, link: &Link, room: &str) {
        let mut membership = link.membership();
        let Some(position) = membership.rooms.iter().position(|name| &**name == room) else { return };
        membership.rooms.swap_remove(position);
        let user = membership.counted_user().map(str::to_owned);
        drop(membership);
        if let Some(user) = user {
            self.count_presence(link.endpoint, [Some(room)].into_iter(), &user, false);
        }
        self.forget_member(link.endpoint, room, link.key);
    }

    /// Takes a member out of a room; a room left empty is dropped.
    fn forget_member(&self, endpoint: usize, room: &str, key: ConnKey) {
        let emptied = {
            let mut rooms = write(&self.rooms[endpoint]);
            let Some(members) = rooms.get_mut(room) else { return };
            members.remove(&key);
            members.is_empty() && rooms.remove(room).is_some()
        };
        if emptied && let Some(fabric) = self.fabric.get() {
            fabric.interest(&self.patterns[endpoint], Some(room), false);
        }
    }

    /// Notified whenever a connection comes or goes (create the `Notified` before looking at
    /// the counts, so no change between the two is missed).
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    /// One frame to every joined connection of `endpoint`, or of one of its rooms, but
    /// `except`. The frame's bytes are shared by every queue they go into; nothing waits on a
    /// slow client (see [`Link::offer`]).
    pub fn broadcast(&self, endpoint: usize, room: Option<&str>, message: &Message, except: Option<ConnKey>) {
        self.metrics.broadcasts.fetch_add(1, Ordering::Relaxed);
        self.offer(endpoint, room, message, except);
        if let Some(fabric) = self.fabric.get() {
            fabric.broadcast(&self.patterns[endpoint], room, message);
        }
    }

    /// A broadcast made in another process, for this one's clients of `pattern`.
    pub fn deliver(&self, pattern: &str, room: Option<&str>, message: &Message) {
        if let Some(&endpoint) = self.by_pattern.get(pattern) {
            self.offer(endpoint, room, message, None);
        }
    }

    /// A frame another process sent to a connection of this one; false when it is not here.
    pub fn deliver_to(&self, id: u128, message: Message) -> bool {
        let link = read(&self.by_id).get(&id).cloned();
        link.is_some_and(|link| link.offer(message))
    }

    fn offer(&self, endpoint: usize, room: Option<&str>, message: &Message, except: Option<ConnKey>) {
        self.visit_members(endpoint, room, |links| {
            for link in links.values() {
                if link.is_joined() && Some(link.key) != except {
                    link.offer(message.clone());
                }
            }
        });
    }

    /// Hands `visit` the connections of an endpoint, or of one of its rooms (none: it has no
    /// members), under the lock that keeps them.
    fn visit_members(&self, endpoint: usize, room: Option<&str>, visit: impl FnOnce(&Links)) {
        match room {
            None => visit(&read(&self.endpoints[endpoint])),
            Some(room) => {
                if let Some(members) = read(&self.rooms[endpoint]).get(room) {
                    visit(members);
                }
            }
        }
    }

    /// Open connections of one endpoint.
    /// This process's numbers now, for `/metrics`.
    pub fn snapshot(&self) -> Snapshot {
        let mut connections = std::collections::BTreeMap::new();
        for (endpoint, pattern) in self.patterns.iter().enumerate() {
            *connections.entry(pattern.clone()).or_default() += self.count(endpoint) as u64;
        }
        self.metrics.snapshot(connections)
    }

    pub fn count(&self, endpoint: usize) -> usize {
        read(&self.endpoints[endpoint]).len()
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Every open connection, across endpoints.
    pub fn all(&self) -> Vec<Arc<Link>> {
        self.endpoints.iter().flat_map(|links| read(links).values().cloned().collect::<Vec<_>>()).collect()
    }

    /// Returns once no connection is left.
    pub async fn until_empty(&self) {
        loop {
            let changed = self.changed.notified();
            if self.live() == 0 {
                return;
            }
            changed.await;
        }
    }
}

impl Hub for Registry {
    fn send_to(&self, id: u128, frame: Frame) -> bool {
        match self.fabric.get() {
            Some(fabric) if !self.node.holds(id) => fabric.send_to(tag_of(id), id, &message(frame)),
            _ => self.deliver_to(id, message(frame)),
        }
    }

    fn max_broadcast(&self) -> usize {
        self.max_broadcast
    }

    fn broadcast(&self, endpoint: usize, room: Option<&str>, frame: Frame) {
        if endpoint < self.endpoints.len() {
            Registry::broadcast(self, endpoint, room, &message(frame), None);
        }
    }

    fn connections(&self, endpoint: usize) -> Vec<u128> {
        self.endpoints.get(endpoint).map_or_else(Vec::new, |links| read(links).values().map(|link| link.id).collect())
    }

    fn send_to_user(&self, user: &str, frame: Frame) -> usize {
        Registry::send_to_user(self, user, frame)
    }

    fn presence(&self, endpoint: usize, room: Option<&str>) -> Vec<(String, u32)> {
        self.present(endpoint, room)
    }

    fn keeps_history(&self, endpoint: usize) -> bool {
        self.keeps.get().is_some_and(|keeps| keeps.get(endpoint).is_some_and(Option::is_some))
    }

    fn broadcast_kept(
        &self,
        endpoint: usize,
        room: Option<&str>,
        frame: Frame,
        except: Option<u128>,
        token: Token,
    ) -> Now<u64> {
        self.keep_broadcast(endpoint, room, message(frame), except, token)
    }

    fn reserve(&self, endpoint: usize, room: Option<&str>, token: Token) -> Now<u64> {
        self.reserve_offset(endpoint, room, token)
    }

    fn commit(&self, endpoint: usize, room: Option<&str>, offset: u64, frame: Option<Frame>, except: Option<u128>) {
        self.commit_offset(endpoint, room, offset, frame.map(message), except);
    }

    fn missed(&self, endpoint: usize, room: Option<&str>, since: Option<(&str, u64)>, token: Token) -> Now<Missed> {
        self.catch_up(endpoint, room, since, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyhost::bridge::NetworkLink;
    use std::collections::VecDeque;
    use std::task::Waker;

    fn link(registry: &Arc<Registry>, key: ConnKey, endpoint: usize) -> Arc<Link> {
        let settings = LinkSettings {
            key,
            id: u128::from(key),
            endpoint,
            capacity: 4,
            byte_capacity: 1 << 20,
            receive_limit: 1024,
            decision: None,
        };
        let link = Arc::new(Link::new(settings, registry.clone()));
        registry.insert(&link);
        link.join();
        link
    }

    fn texts(link: &Link) -> Vec<String> {
        let mut frames = VecDeque::new();
        link.take(Waker::noop(), &mut frames, 0);
        frames.into_iter().map(|m| m.into_text().unwrap().to_string()).collect()
    }

    #[test]
    fn a_room_broadcast_reaches_its_members_only_and_excludes_the_sender_when_asked() {
        let registry = Arc::new(Registry::new(vec!["/a".into(), "/b".into()], Node::random(), usize::MAX));
        let (ann, bob, cy, other_endpoint) =
            (link(&registry, 1, 0), link(&registry, 2, 0), link(&registry, 3, 0), link(&registry, 4, 1));
        ann.join_room("red");
        bob.join_room("red");
        other_endpoint.join_room("red");
        ann.broadcast(Frame::Text("to red".into()), Some("red"), false);
        ann.broadcast(Frame::Text("not to me".into()), Some("red"), true);
        assert_eq!(texts(&ann), ["to red"]);
        assert_eq!(texts(&bob), ["to red", "not to me"]);
        assert!(texts(&cy).is_empty(), "not a member");
        assert!(texts(&other_endpoint).is_empty(), "rooms belong to an endpoint");
        assert_eq!(ann.rooms(), ["red"]);
    }

    #[test]
    fn membership_ends_with_leaving_or_with_the_connection() {
        let registry = Arc::new(Registry::new(vec!["/a".into()], Node::random(), usize::MAX));
        let (ann, bob) = (link(&registry, 1, 0), link(&registry, 2, 0));
        ann.join_room("red");
        ann.join_room("blue");
        bob.join_room("red");
        ann.leave_room("blue");
        assert_eq!(ann.rooms(), ["red"]);
        assert!(!read(&registry.rooms[0]).contains_key("blue"), "an empty room is dropped");
        registry.remove(&ann);
        bob.broadcast(Frame::Text("hi".into()), Some("red"), false);
        assert!(texts(&ann).is_empty());
        assert_eq!(read(&registry.rooms[0])["red"].len(), 1);
        registry.remove(&bob);
        assert!(read(&registry.rooms[0]).is_empty());
    }

    #[test]
    fn send_to_reaches_one_open_connection_by_id() {
        let registry = Arc::new(Registry::new(vec!["/a".into()], Node::random(), usize::MAX));
        let ann = link(&registry, 1, 0);
        assert!(registry.send_to(1, Frame::Text("hello".into())));
        assert!(!registry.send_to(99, Frame::Text("nobody".into())));
        assert_eq!(texts(&ann), ["hello"]);
        assert_eq!(registry.connections(0), [1]);
        registry.remove(&ann);
        assert!(!registry.send_to(1, Frame::Text("gone".into())));
        assert!(registry.connections(0).is_empty());
    }

    #[test]
    fn send_to_a_full_queue_drops_that_client_as_a_slow_consumer() {
        let registry = Arc::new(Registry::new(vec!["/a".into()], Node::random(), usize::MAX));
        let ann = link(&registry, 1, 0);
        for n in 0..4 {
            assert!(registry.send_to(1, Frame::Text(n.to_string())));
        }
        assert!(!registry.send_to(1, Frame::Text("one too many".into())));
        let mut frames = VecDeque::new();
        let taken = ann.take(Waker::noop(), &mut frames, 0);
        assert!(frames.is_empty(), "its queue is dropped");
        assert_eq!(u16::from(taken.closing.unwrap().frame.code), pyhost::close_code::TRY_AGAIN_LATER);
    }

    fn present(registry: &Registry, room: Option<&str>) -> Vec<(String, u32)> {
        registry.present(0, room)
    }

    #[test]
    fn an_identified_connection_counts_while_it_is_served_and_send_to_user_reaches_each() {
        let registry = Arc::new(Registry::new(vec!["/a".into()], Node::random(), usize::MAX));
        registry.set_presence_grace(Duration::ZERO);
        let opening = Arc::new(Link::new(
            LinkSettings {
                key: 1,
                id: 1,
                endpoint: 0,
                capacity: 4,
                byte_capacity: 1 << 20,
                receive_limit: 1024,
                decision: None,
            },
            registry.clone(),
        ));
        registry.insert(&opening);
        opening.identify("ann");
        assert!(present(&registry, None).is_empty(), "on_connect has not accepted it yet");
        assert_eq!(registry.send_to_user("ann", Frame::Text("too early".into())), 0);
        let (ann, phone) = (link(&registry, 2, 0), link(&registry, 3, 0));
        ann.identify("ann");
        phone.identify("ann");
        phone.join_room("red");
        assert_eq!(present(&registry, None), [("ann".to_owned(), 2)]);
        assert_eq!(present(&registry, Some("red")), [("ann".to_owned(), 1)]);
        assert_eq!(registry.send_to_user("ann", Frame::Text("hi".into())), 2);
        assert_eq!((texts(&ann), texts(&phone)), (vec!["hi".to_owned()], vec!["hi".to_owned()]));
        assert!(texts(&opening).is_empty());
        phone.identify("bob");
        assert_eq!(present(&registry, Some("red")), [("bob".to_owned(), 1)], "the room follows the user");
        registry.remove(&phone);
        registry.remove(&opening);
        assert_eq!(present(&registry, None), [("ann".to_owned(), 1)]);
        assert!(present(&registry, Some("red")).is_empty());
        assert_eq!(registry.send_to_user("bob", Frame::Text("gone".into())), 0);
        ann.leave();
        assert!(present(&registry, None).is_empty(), "the conversation is over");
        assert_eq!(registry.send_to_user("ann", Frame::Text("over".into())), 0);
    }
}
