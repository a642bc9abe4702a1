//! Who is present where, across the cluster: each node counts its own identified connections
//! per endpoint and per room, tells the others every change as one small note (a count, not
//! a snapshot), and keeps a replica of everyone else's counts, so `presence()` and
//! `send_to_user` read memory, never the network.
//!
//! A user whose cluster-wide count in a scope falls to zero lingers there for the grace
//! period: coming back within it (a page reload, a phone changing networks) is neither a
//! leave nor a join. Every node keeps the same lingering users, so every node lists the same;
//! only the leader (the oldest node it knows) announces joins and leaves to the app, so the
//! app hears each once per cluster.
//!
//! Consistency: a node's notes carry a sequence number; a gap (a note lost on a full queue)
//! makes the receiver ask everyone for a full snapshot, as does a node that joins or hears the
//! broker again. A node that leaves the cluster (its worker exits, its heartbeat in Redis
//! expires) is forgotten with its counts.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An endpoint (its route pattern, the same in every process) or one of its rooms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    #[serde(rename = "e")]
    pub endpoint: String,
    #[serde(rename = "r")]
    pub room: Option<String>,
}

impl Scope {
    pub fn new(endpoint: &str, room: Option<&str>) -> Self {
        Self { endpoint: endpoint.to_owned(), room: room.map(str::to_owned) }
    }
}

/// A user's open connections in one scope, on one node.
type Book = HashMap<Scope, HashMap<String, u32>>;

/// One count as a node publishes it: absolute, so notes can be applied again harmlessly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "s")]
    pub scope: Scope,
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "c")]
    pub count: u32,
}

/// What nodes tell each other about presence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    #[serde(rename = "n")]
    pub node: u32,
    /// When the node started (ms since the Unix epoch): the oldest node leads.
    #[serde(rename = "b")]
    pub born: u64,
    #[serde(rename = "q")]
    pub seq: u64,
    #[serde(rename = "k")]
    pub kind: NoteKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NoteKind {
    /// Counts that changed.
    Delta(Vec<Entry>),
    /// Every count of the node: it replaces what others knew of it.
    Snapshot(Vec<Entry>),
    /// "Send me your snapshots": a node that joined, heard the broker again, or missed a note.
    Sync,
}

impl Note {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Joins and leaves of one scope, for the app's `on_presence`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

pub type Changes = HashMap<Scope, Change>;

/// Another node as this one knows it.
struct Peer {
    born: u64,
    seq: u64,
    book: Book,
    /// When it was last heard from or seen alive (a broker's list of live nodes).
    seen: Instant,
}

pub struct Presence {
    node: u32,
    born: u64,
    seq: u64,
    own: Book,
    peers: HashMap<u32, Peer>,
    /// Every node's counts summed.
    totals: Book,
    /// Users whose count fell to zero, until when they stay present.
    lingering: HashMap<(Scope, String), Instant>,
    grace: Duration,
    /// Before this, the node does not announce: it may not have everyone's counts yet (nor
    /// know whether it is the oldest). What changes meanwhile waits here, announced then if
    /// the node leads.
    settled: Instant,
    deferred: Changes,
    /// The other nodes the bus or the broker says are up: until this node has heard from
    /// each (and so knows when it started), it cannot tell whether it is the oldest.
    listed: HashSet<u32>,
}

/// How long a node that has just joined (or heard the broker again) waits for the others'
/// snapshots before it announces joins and leaves.
pub const SETTLE: Duration = Duration::from_secs(1);

impl Presence {
    pub fn new(node: u32, grace: Duration) -> Self {
        let born = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis())
            .unwrap_or(u64::MAX);
        Self {
            node,
            born,
            seq: 0,
            own: Book::new(),
            peers: HashMap::new(),
            totals: Book::new(),
            lingering: HashMap::new(),
            grace,
            settled: Instant::now(),
            deferred: Changes::new(),
            listed: HashSet::new(),
        }
    }

    /// This node's connections of `user` in `scope` go up or down by one: the new count, for
    /// [`Presence::delta`].
    pub fn add(&mut self, scope: &Scope, user: &str, up: bool, changes: &mut Changes) -> Entry {
        let users = self.own.entry(scope.clone()).or_default();
        let count = users.entry(user.to_owned()).or_default();
        let before = *count;
        *count = if up { before + 1 } else { before.saturating_sub(1) };
        let after = *count;
        if after == 0 {
            users.remove(user);
            if users.is_empty() {
                self.own.remove(scope);
            }
        }
        self.shift(scope, user, before, after, changes);
        Entry { scope: scope.clone(), user: user.to_owned(), count: after }
    }

    /// The note that tells the others of this node's changed counts.
    pub fn delta(&mut self, entries: Vec<Entry>) -> Note {
        self.seq += 1;
        Note { node: self.node, born: self.born, seq: self.seq, kind: NoteKind::Delta(entries) }
    }

    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// Every count of this node, as a note that replaces what others knew of it.
    pub fn snapshot(&mut self) -> Note {
        self.seq += 1;
        Note { node: self.node, born: self.born, seq: self.seq, kind: NoteKind::Snapshot(entries(&self.own)) }
    }

    pub fn sync_request(&self) -> Note {
        Note { node: self.node, born: self.born, seq: self.seq, kind: NoteKind::Sync }
    }

    /// This node has just joined the others (or heard them again): it announces nothing until
    /// their snapshots have had time to arrive.
    pub fn unsettle(&mut self, now: Instant) {
        self.settled = now + SETTLE;
    }

    /// A note from another node. Answers what to publish back: a snapshot when asked for one,
    /// a sync request when a note was missed.
    pub fn apply(&mut self, note: Note, now: Instant, changes: &mut Changes) -> Option<Note> {
        if note.node == self.node {
            return None;
        }
        let known = self.peers.contains_key(&note.node);
        let peer = self.peers.entry(note.node).or_insert_with(|| Peer {
            born: note.born,
            seq: 0,
            book: Book::new(),
            seen: now,
        });
        peer.seen = now;
        peer.born = note.born;
        match note.kind {
            NoteKind::Sync => Some(self.snapshot()),
            NoteKind::Snapshot(entries) => {
                peer.seq = note.seq;
                let old = std::mem::take(&mut peer.book);
                let new = book_of(entries);
                self.replace(&old, &new, changes);
                if let Some(peer) = self.peers.get_mut(&note.node) {
                    peer.book = new;
                }
                None
            }
            NoteKind::Delta(entries) => {
                let missed = !known || note.seq != peer.seq + 1;
                peer.seq = note.seq;
                let mut shifts = Vec::with_capacity(entries.len());
                for Entry { scope, user, count } in entries {
                    let users = peer.book.entry(scope.clone()).or_default();
                    let before = if count == 0 { users.remove(&user) } else { users.insert(user.clone(), count) };
                    if users.is_empty() {
                        peer.book.remove(&scope);
                    }
                    shifts.push((scope, user, before.unwrap_or(0), count));
                }
                for (scope, user, before, after) in shifts {
                    self.shift(&scope, &user, before, after, changes);
                }
                missed.then(|| self.sync_request())
            }
        }
    }

    /// The nodes alive now, as the bus says (`exact`: a node not in it is gone) or as the
    /// broker's list of live nodes says (a node missing from it for `expiry` is gone).
    pub fn alive(&mut self, nodes: &HashSet<u32>, exact: bool, expiry: Duration, now: Instant, changes: &mut Changes) {
        self.listed.clone_from(nodes);
        self.listed.remove(&self.node);
        let mut gone = Vec::new();
        for (node, peer) in &mut self.peers {
            if nodes.contains(node) {
                peer.seen = now;
            } else if exact || now.duration_since(peer.seen) > expiry {
                gone.push(*node);
            }
        }
        for node in gone {
            if let Some(peer) = self.peers.remove(&node) {
                self.replace(&peer.book, &Book::new(), changes);
            }
        }
    }

    /// Users who lingered past the grace period leave now.
    pub fn expire(&mut self, now: Instant, changes: &mut Changes) {
        let over: Vec<(Scope, String)> =
            self.lingering.iter().filter(|(_, until)| **until <= now).map(|(key, _)| key.clone()).collect();
        for key in over {
            self.lingering.remove(&key);
            let (scope, user) = key;
            changes.entry(scope).or_default().left.push(user);
        }
    }

    /// When the next lingering user's grace is over (None: nobody lingers).
    pub fn next_leave(&self) -> Option<Instant> {
        self.lingering.values().min().copied()
    }

    fn knows_an_older_node(&self) -> bool {
        self.peers.iter().any(|(node, peer)| (peer.born, *node) < (self.born, self.node))
    }

    /// Whether this node announces joins and leaves: it has had time to hear the others, has
    /// heard from every node listed as up, and is the oldest of them.
    pub fn leads(&self, now: Instant) -> bool {
        now >= self.settled
            && self.listed.iter().all(|node| self.peers.contains_key(node))
            && !self.knows_an_older_node()
    }

    /// What to announce of `changes` now (if this node leads): nothing while it settles (it
    /// has not had time to hear everyone, or has not heard a node listed as up), when they
    /// wait instead; once settled, what waited too.
    pub fn announceable(&mut self, mut changes: Changes, now: Instant) -> Changes {
        if now < self.settled || !self.listed.iter().all(|node| self.peers.contains_key(node)) {
            // A change an older node has seen is that node's to announce: only what this
            // node may yet have to announce waits.
            if !self.knows_an_older_node() {
                merge(&mut self.deferred, changes);
            }
            return Changes::new();
        }
        if !self.deferred.is_empty() {
            let mut waited = std::mem::take(&mut self.deferred);
            merge(&mut waited, changes);
            changes = waited;
        }
        if self.leads(now) { changes } else { Changes::new() }
    }

    /// When something must happen without a change to prompt it: a lingering user's leave, or
    /// the end of settling with changes waiting (hearing from a node listed as up is a change
    /// that prompts).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let settling = (!self.deferred.is_empty() && now < self.settled).then_some(self.settled);
        self.next_leave().into_iter().chain(settling).min()
    }

    /// Users present in `scope`: open connections across the cluster, 0 for one lingering.
    pub fn present(&self, scope: &Scope) -> HashMap<String, u32> {
        let mut present = self.totals.get(scope).cloned().unwrap_or_default();
        for (lingering_scope, user) in self.lingering.keys() {
            if lingering_scope == scope {
                present.entry(user.clone()).or_insert(0);
            }
        }
        present
    }

    /// The other nodes where `user` has connections, with how many (across endpoints).
    pub fn nodes_of(&self, user: &str) -> Vec<(u32, u32)> {
        let mut found = Vec::new();
        for (node, peer) in &self.peers {
            let count: u32 = peer
                .book
                .iter()
                .filter(|(scope, _)| scope.room.is_none())
                .filter_map(|(_, users)| users.get(user))
                .sum();
            if count > 0 {
                found.push((*node, count));
            }
        }
        found
    }

    /// A node's counts change from `old` to `new` as a whole.
    fn replace(&mut self, old: &Book, new: &Book, changes: &mut Changes) {
        for (scope, users) in old {
            for (user, before) in users {
                let after = new.get(scope).and_then(|users| users.get(user)).copied().unwrap_or(0);
                self.shift(scope, user, *before, after, changes);
            }
        }
        for (scope, users) in new {
            for (user, after) in users {
                if old.get(scope).and_then(|users| users.get(user)).is_none() {
                    self.shift(scope, user, 0, *after, changes);
                }
            }
        }
    }

    /// One node's count of `user` in `scope` went from `before` to `after`: the total follows,
    /// and a total leaving or reaching zero is a join or the start of a linger.
    fn shift(&mut self, scope: &Scope, user: &str, before: u32, after: u32, changes: &mut Changes) {
        if before == after {
            return;
        }
        let users = self.totals.entry(scope.clone()).or_default();
        let total = users.entry(user.to_owned()).or_default();
        let was = *total;
        *total = (was + after).saturating_sub(before);
        let now = *total;
        if now == 0 {
            users.remove(user);
            if users.is_empty() {
                self.totals.remove(scope);
            }
        }
        let key = (scope.clone(), user.to_owned());
        if was == 0 && now > 0 {
            if self.lingering.remove(&key).is_none() {
                changes.entry(scope.clone()).or_default().joined.push(user.to_owned());
            }
        } else if was > 0 && now == 0 {
            if self.grace.is_zero() {
                changes.entry(scope.clone()).or_default().left.push(user.to_owned());
            } else {
                self.lingering.insert(key, Instant::now() + self.grace);
            }
        }
    }
}

/// Adds `more` to `changes`, scope by scope.
fn merge(changes: &mut Changes, more: Changes) {
    for (scope, change) in more {
        let into = changes.entry(scope).or_default();
        into.joined.extend(change.joined);
        into.left.extend(change.left);
    }
}

fn entries(book: &Book) -> Vec<Entry> {
    book.iter()
        .flat_map(|(scope, users)| {
            users.iter().map(|(user, count)| Entry { scope: scope.clone(), user: user.clone(), count: *count })
        })
        .collect()
}

fn book_of(entries: Vec<Entry>) -> Book {
    let mut book = Book::new();
    for Entry { scope, user, count } in entries {
        if count > 0 {
            book.entry(scope).or_default().insert(user, count);
        }
    }
    book
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Scope {
        Scope::new("/chat", None)
    }

    fn lobby() -> Scope {
        Scope::new("/chat", Some("lobby"))
    }

    fn joined(changes: &Changes, scope: &Scope) -> Vec<String> {
        changes.get(scope).map(|change| change.joined.clone()).unwrap_or_default()
    }

    fn left(changes: &Changes, scope: &Scope) -> Vec<String> {
        changes.get(scope).map(|change| change.left.clone()).unwrap_or_default()
    }

    #[test]
    fn a_second_connection_is_no_join_and_the_last_one_lingers_before_its_leave() {
        let mut presence = Presence::new(1, Duration::from_millis(50));
        let mut changes = Changes::new();
        presence.add(&chat(), "ann", true, &mut changes);
        presence.add(&chat(), "ann", true, &mut changes);
        assert_eq!(joined(&changes, &chat()), ["ann"]);
        assert_eq!(presence.present(&chat()), HashMap::from([("ann".to_owned(), 2)]));
        changes.clear();
        presence.add(&chat(), "ann", false, &mut changes);
        presence.add(&chat(), "ann", false, &mut changes);
        assert!(changes.is_empty(), "lingering, not gone");
        assert_eq!(presence.present(&chat()), HashMap::from([("ann".to_owned(), 0)]));
        presence.expire(Instant::now(), &mut changes);
        assert!(changes.is_empty(), "the grace is not over");
        presence.expire(Instant::now() + Duration::from_millis(60), &mut changes);
        assert_eq!(left(&changes, &chat()), ["ann"]);
        assert!(presence.present(&chat()).is_empty());
    }

    #[test]
    fn coming_back_within_the_grace_is_neither_a_leave_nor_a_join() {
        let mut presence = Presence::new(1, Duration::from_secs(5));
        let mut changes = Changes::new();
        presence.add(&lobby(), "ann", true, &mut changes);
        changes.clear();
        presence.add(&lobby(), "ann", false, &mut changes);
        presence.add(&lobby(), "ann", true, &mut changes);
        presence.expire(Instant::now() + Duration::from_secs(6), &mut changes);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(presence.present(&lobby()), HashMap::from([("ann".to_owned(), 1)]));
    }

    #[test]
    fn other_nodes_counts_add_up_and_a_reconnect_elsewhere_is_no_join() {
        let (mut a, mut b) = (Presence::new(1, Duration::from_secs(5)), Presence::new(2, Duration::from_secs(5)));
        let now = Instant::now();
        let mut changes = Changes::new();
        let entry = a.add(&chat(), "ann", true, &mut changes);
        let note = a.delta(vec![entry]);
        changes.clear();
        assert_eq!(b.apply(note, now, &mut changes), Some(b.sync_request()), "a node it never heard of: sync");
        assert_eq!(joined(&changes, &chat()), ["ann"]);
        // Ann's connection moves from a to b: b counts her at once, a's leave arrives later.
        changes.clear();
        b.add(&chat(), "ann", true, &mut changes);
        let entry = a.add(&chat(), "ann", false, &mut changes);
        assert_eq!(b.apply(a.delta(vec![entry]), now, &mut changes), None, "in sequence");
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(b.present(&chat()), HashMap::from([("ann".to_owned(), 1)]));
        assert_eq!(a.nodes_of("ann"), Vec::<(u32, u32)>::new(), "a has not heard of b's connection");
    }

    #[test]
    fn a_snapshot_replaces_what_was_known_and_a_gone_node_takes_its_users_along() {
        let mut b = Presence::new(2, Duration::ZERO);
        let now = Instant::now();
        let mut changes = Changes::new();
        let entry = |user: &str, count| Entry { scope: lobby(), user: user.into(), count };
        let snapshot = |seq, entries| Note { node: 1, born: 0, seq, kind: NoteKind::Snapshot(entries) };
        b.apply(snapshot(3, vec![entry("ann", 1), entry("bob", 2)]), now, &mut changes);
        assert_eq!(joined(&changes, &lobby()).len(), 2);
        changes.clear();
        b.apply(snapshot(4, vec![entry("bob", 1), entry("cy", 1)]), now, &mut changes);
        assert_eq!((joined(&changes, &lobby()), left(&changes, &lobby())), (vec!["cy".into()], vec!["ann".into()]));
        assert_eq!(b.nodes_of("bob"), []);
        changes.clear();
        b.alive(&HashSet::from([1]), false, Duration::from_secs(6), now + Duration::from_secs(10), &mut changes);
        assert!(changes.is_empty(), "still listed as alive");
        b.alive(&HashSet::new(), false, Duration::from_secs(6), now + Duration::from_secs(12), &mut changes);
        assert!(changes.is_empty(), "missing from the list for less than the expiry");
        b.alive(&HashSet::new(), false, Duration::from_secs(6), now + Duration::from_secs(17), &mut changes);
        let mut gone = left(&changes, &lobby());
        gone.sort();
        assert_eq!(gone, ["bob", "cy"]);
        assert!(b.present(&lobby()).is_empty());
    }

    #[test]
    fn a_sync_request_is_answered_with_a_snapshot_and_a_gap_asks_for_one() {
        let (mut a, mut b) = (Presence::new(1, Duration::ZERO), Presence::new(2, Duration::ZERO));
        let now = Instant::now();
        let mut changes = Changes::new();
        a.add(&chat(), "ann", true, &mut changes);
        let answer = a.apply(b.sync_request(), now, &mut changes).expect("a snapshot");
        assert!(matches!(answer.kind, NoteKind::Snapshot(ref entries) if entries.len() == 1));
        assert_eq!(b.apply(answer, now, &mut changes), None);
        let bob = a.add(&chat(), "bob", true, &mut changes);
        let _lost = a.delta(vec![bob]);
        let cy = a.add(&chat(), "cy", true, &mut changes);
        assert_eq!(b.apply(a.delta(vec![cy]), now, &mut changes), Some(b.sync_request()), "bob's note was missed");
        assert_eq!(b.present(&chat()).len(), 2, "what came is applied meanwhile");
    }

    #[test]
    fn the_oldest_settled_node_leads() {
        let mut young = Presence::new(9, Duration::ZERO);
        let now = Instant::now();
        assert!(young.leads(now), "alone");
        young.unsettle(now);
        assert!(!young.leads(now) && young.leads(now + SETTLE));
        let older = Note { node: 5, born: young.born - 1, seq: 1, kind: NoteKind::Snapshot(vec![]) };
        young.apply(older, now, &mut Changes::new());
        assert!(!young.leads(now + SETTLE));
        young.alive(&HashSet::new(), true, Duration::ZERO, now, &mut Changes::new());
        assert!(young.leads(now + SETTLE), "the older one is gone");
    }

    #[test]
    fn what_an_older_node_saw_while_this_one_settled_is_not_announced_again_when_it_goes() {
        let mut young = Presence::new(9, Duration::from_secs(5));
        let now = Instant::now();
        young.unsettle(now);
        let older = Note {
            node: 5,
            born: young.born - 1,
            seq: 1,
            kind: NoteKind::Snapshot(vec![Entry { scope: chat(), user: "ann".into(), count: 1 }]),
        };
        let mut changes = Changes::new();
        young.apply(older, now, &mut changes);
        assert!(young.announceable(changes, now).is_empty());
        // The older node announced ann's join, then died; the young one leads from now on.
        let mut gone = Changes::new();
        young.alive(&HashSet::new(), true, Duration::ZERO, now, &mut gone);
        assert!(young.announceable(gone, now + SETTLE).is_empty(), "ann lingers; her join is not said twice");
    }

    #[test]
    fn what_changes_while_a_node_settles_is_announced_once_it_has_if_it_leads() {
        let mut presence = Presence::new(1, Duration::ZERO);
        let now = Instant::now();
        presence.unsettle(now);
        let mut changes = Changes::new();
        presence.add(&chat(), "ann", true, &mut changes);
        assert!(presence.announceable(changes, now).is_empty(), "settling: it waits");
        assert_eq!(presence.next_due(now), Some(now + SETTLE));
        let mut later = Changes::new();
        presence.add(&chat(), "bob", true, &mut later);
        let announced = presence.announceable(later, now + SETTLE);
        assert_eq!(joined(&announced, &chat()), ["ann", "bob"]);
        assert_eq!(presence.next_due(now + SETTLE), None);
        presence.unsettle(now + SETTLE);
        presence.add(&chat(), "cy", true, &mut Changes::new());
        let mut deferred = Changes::new();
        presence.add(&lobby(), "cy", true, &mut deferred);
        presence.announceable(deferred, now + SETTLE);
        let older = Note { node: 0, born: 0, seq: 1, kind: NoteKind::Snapshot(vec![]) };
        presence.apply(older, now, &mut Changes::new());
        assert!(presence.announceable(Changes::new(), now + SETTLE * 3).is_empty(), "another node leads");
    }

    #[test]
    fn a_node_listed_as_up_but_not_heard_from_keeps_a_settled_node_from_leading() {
        let mut young = Presence::new(9, Duration::ZERO);
        let now = Instant::now();
        young.alive(&HashSet::from([5, 9]), true, Duration::ZERO, now, &mut Changes::new());
        let mut changes = Changes::new();
        young.add(&chat(), "ann", true, &mut changes);
        assert!(young.announceable(changes, now).is_empty(), "node 5 may be older");
        assert!(!young.leads(now));
        let older = Note { node: 5, born: young.born - 1, seq: 1, kind: NoteKind::Snapshot(vec![]) };
        young.apply(older, now, &mut Changes::new());
        assert!(young.announceable(Changes::new(), now).is_empty(), "5 is older: it announces");
        let mut alone = Presence::new(9, Duration::ZERO);
        alone.alive(&HashSet::from([5]), true, Duration::ZERO, now, &mut Changes::new());
        let mut changes = Changes::new();
        alone.add(&chat(), "ann", true, &mut changes);
        assert!(alone.announceable(changes, now).is_empty());
        alone.alive(&HashSet::new(), true, Duration::ZERO, now, &mut Changes::new());
        let said = alone.announceable(Changes::new(), now + SETTLE);
        assert_eq!(joined(&said, &chat()), ["ann"], "5 went: what waited is said");
    }

    #[test]
    fn notes_travel_as_small_json() {
        let note = Note {
            node: 7,
            born: 1,
            seq: 2,
            kind: NoteKind::Delta(vec![Entry { scope: lobby(), user: "ann".into(), count: 1 }]),
        };
        let encoded = note.encode();
        assert!(encoded.len() < 100, "{}", String::from_utf8_lossy(&encoded));
        assert_eq!(Note::decode(&encoded), Some(note));
        assert_eq!(Note::decode(b"{"), None);
    }
}
