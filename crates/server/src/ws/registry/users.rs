//! The users behind connections: `websocket.identify(user)`, presence across the cluster,
//! `send_to_user`, and announcing joins and leaves to the app. The replica itself is
//! [`super::presence`]; this is where connections' comings and goings feed it and where what
//! it decides goes out (notes to the other nodes, events to the app).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyhost::bridge::{Bridge, Event, Frame};
use pyhost::locks::{lock, read, write};
use tokio_tungstenite::tungstenite::Message;

use super::link::Stage;
use super::presence::{Changes, Entry, Note, Scope};
use super::{Link, Registry, message};

impl Registry {
    /// Where joins and leaves go (the app's `on_presence`); until set, they are not announced.
    pub fn announce_to(&self, bridge: Arc<Bridge>) {
        let _ = self.announcer.set(bridge);
    }

    /// How long a user whose last connection closed stays present (`--presence-grace`).
    pub fn set_presence_grace(&self, grace: Duration) {
        lock(&self.presence).set_grace(grace);
    }

    /// `websocket.identify(user)`: the connection is `user`'s from now on.
    pub fn identify(&self, link: &Link, user: &str) {
        let mut membership = link.membership();
        if membership.user.as_deref() == Some(user) {
            return;
        }
        let before = membership.counted_user().map(str::to_owned);
        membership.user = Some(user.into());
        let after = membership.counted_user().map(str::to_owned);
        let rooms = membership.rooms.clone();
        drop(membership);
        self.recount(link, &rooms, before.as_deref(), after.as_deref());
    }

    /// The app accepted the connection (`Serving`) or is done with it (`Over`, final).
    pub(super) fn set_stage(&self, link: &Link, stage: Stage) {
        let mut membership = link.membership();
        if membership.stage == Stage::Over || membership.stage == stage {
            return;
        }
        let before = membership.counted_user().map(str::to_owned);
        membership.stage = stage;
        let after = membership.counted_user().map(str::to_owned);
        let rooms = membership.rooms.clone();
        drop(membership);
        self.recount(link, &rooms, before.as_deref(), after.as_deref());
    }

    /// A connection counted for `before` now counts for `after` (either may be none).
    pub(super) fn recount(&self, link: &Link, rooms: &[Box<str>], before: Option<&str>, after: Option<&str>) {
        if before == after {
            return;
        }
        if let Some(user) = before {
            let mut users = write(&self.users);
            if let Some(links) = users.get_mut(user) {
                links.retain(|other| other.key != link.key);
                if links.is_empty() {
                    users.remove(user);
                }
            }
            drop(users);
            self.count_presence(link.endpoint, rooms.iter().map(|room| Some(&**room)).chain([None]), user, false);
        }
        if let Some(user) = after {
            let Some(member) = read(&self.endpoints[link.endpoint]).get(&link.key).cloned() else { return };
            write(&self.users).entry(user.into()).or_default().push(member);
            self.count_presence(
                link.endpoint,
                [None].into_iter().chain(rooms.iter().map(|room| Some(&**room))),
                user,
                true,
            );
        }
    }

    /// One connection of `user` more (or fewer) in each of these scopes of `endpoint`.
    pub(super) fn count_presence<'a>(
        &self,
        endpoint: usize,
        scopes: impl Iterator<Item = Option<&'a str>>,
        user: &str,
        up: bool,
    ) {
        let pattern = &self.patterns[endpoint];
        let mut changes = Changes::new();
        let note = {
            let mut presence = lock(&self.presence);
            let entries: Vec<Entry> =
                scopes.map(|room| presence.add(&Scope::new(pattern, room), user, up, &mut changes)).collect();
            presence.delta(entries)
        };
        self.publish_presence(&note);
        self.counts_changed(changes);
    }

    fn publish_presence(&self, note: &Note) {
        if let Some(fabric) = self.fabric.get() {
            fabric.presence(note.encode().into());
        }
    }

    /// Counts changed: wakes the task that announces leaves (a user may have started to
    /// linger, which is no change to announce yet), and announces what did change.
    fn counts_changed(&self, changes: Changes) {
        self.lingering.notify_one();
        self.announce(changes);
    }

    /// Hands joins and leaves to the app, when this node is the one that announces them (once
    /// it has settled: what changed meanwhile waits until then).
    fn announce(&self, changes: Changes) {
        let changes = lock(&self.presence).announceable(changes, Instant::now());
        if changes.is_empty() {
            return;
        }
        let Some(bridge) = self.announcer.get() else { return };
        for (scope, change) in changes {
            if let Some(&endpoint) = self.by_pattern.get(&scope.endpoint) {
                bridge.push(Event::Presence { endpoint, room: scope.room, joined: change.joined, left: change.left });
            }
        }
    }

    /// `send_to_user`: a frame to every open connection of `user`, here and (as far as this
    /// node knows) on the others; how many it went to.
    pub fn send_to_user(&self, user: &str, frame: Frame) -> usize {
        let message = message(frame);
        let mut reached = self.deliver_to_user(user, &message);
        if let Some(fabric) = self.fabric.get() {
            let elsewhere = lock(&self.presence).nodes_of(user);
            for (node, count) in elsewhere {
                if fabric.send_to_user(node, user, &message) {
                    reached += count as usize;
                }
            }
        }
        reached
    }

    /// A frame for every connection of `user` in this process; how many queued it.
    pub fn deliver_to_user(&self, user: &str, message: &Message) -> usize {
        let links = read(&self.users).get(user).cloned().unwrap_or_default();
        links.iter().filter(|link| link.offer(message.clone())).count()
    }

    /// The users present in an endpoint or one of its rooms, across the cluster.
    pub fn present(&self, endpoint: usize, room: Option<&str>) -> Vec<(String, u32)> {
        let Some(pattern) = self.patterns.get(endpoint) else { return Vec::new() };
        let mut present: Vec<_> = lock(&self.presence).present(&Scope::new(pattern, room)).into_iter().collect();
        present.sort();
        present
    }

    /// A presence note from another node.
    pub fn presence_heard(&self, bytes: &[u8]) {
        let Some(note) = Note::decode(bytes) else {
            tracing::debug!("a presence note that is not ours (or of another version): ignored");
            return;
        };
        let mut changes = Changes::new();
        let answer = lock(&self.presence).apply(note, Instant::now(), &mut changes);
        if let Some(answer) = answer {
            self.publish_presence(&answer);
        }
        self.counts_changed(changes);
    }

    /// The other nodes alive now: `exact` from the bus (a node not listed is gone), otherwise
    /// from the broker's list of live nodes (gone once missing from it for `expiry`).
    pub fn presence_alive(&self, nodes: &HashSet<u32>, exact: bool, expiry: Duration) {
        let mut changes = Changes::new();
        lock(&self.presence).alive(nodes, exact, expiry, Instant::now(), &mut changes);
        self.counts_changed(changes);
    }

    /// This node (re)joined the others: it asks for their counts and gives its own.
    pub fn presence_rejoined(&self) {
        let (sync, snapshot) = {
            let mut presence = lock(&self.presence);
            presence.unsettle(Instant::now());
            (presence.sync_request(), presence.snapshot())
        };
        self.publish_presence(&sync);
        self.publish_presence(&snapshot);
    }

    /// Announces the leaves of users who lingered past the grace period as they fall due, and
    /// what changed while this node settled once it has (asleep while nothing is due).
    pub async fn expire_presence(self: Arc<Self>) {
        loop {
            let lingering = self.lingering.notified();
            let next = lock(&self.presence).next_due(Instant::now());
            match next {
                None => lingering.await,
                Some(due) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(due.into()) => {}
                        () = lingering => continue,
                    }
                }
            }
            let mut changes = Changes::new();
            lock(&self.presence).expire(Instant::now(), &mut changes);
            self.announce(changes);
        }
    }
}
