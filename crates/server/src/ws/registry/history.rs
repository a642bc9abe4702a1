//! One room's history (or an endpoint's): the offsets it hands out, the broadcasts it keeps,
//! and the order it releases them in.
//!
//! A broadcast takes an offset first (`reserve`), so the app can put it into its message, then
//! hands the message in (`commit`). Two broadcasts may commit out of order (their messages are
//! built in different places); each is released only once every offset before it has been
//! released or given up, so every client gets a room's messages in offset order and the log
//! has no gap but those given up. An offset reserved and never committed (the app's callable
//! raised, or the process that reserved it died) is given up after [`ABANDONED_AFTER`].
//!
//! The same log serves one process (in the registry) and the workers of `--processes` (in the
//! supervisor); across hosts, Redis keeps it with the same rules (`cluster/broker/history`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Message;

use super::presence::Scope;

/// How long a reserved offset may wait for its message before it is given up (and the
/// broadcasts after it released).
pub const ABANDONED_AFTER: Duration = Duration::from_secs(2);

/// How long a history with no `history_ttl` lasts without a broadcast before it is forgotten.
pub const IDLE_WITHOUT_SPAN: Duration = Duration::from_secs(7 * 24 * 3600);

/// What an endpoint keeps (`@app.websocket(path, history=N, history_ttl=S)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keep {
    /// The last this many broadcasts of each room (and of the endpoint as a whole).
    pub count: usize,
    /// And none older than this.
    pub span: Option<Duration>,
}

impl Keep {
    /// How long a room's history lasts without a broadcast: then it is forgotten (and begins
    /// a new epoch), so rooms that come and go do not pile up.
    pub fn idle_limit(self) -> Duration {
        self.span.unwrap_or(IDLE_WITHOUT_SPAN)
    }
}

pub use pyhost::bridge::{Gap, Position};

/// What a client asking from an offset gets: the messages after it, in order, or the gap.
pub type Catchup = Result<Vec<(u64, Message)>, Gap>;

/// A committed broadcast: its message, and the connection it must not reach (its sender's,
/// with `exclude_self`).
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub message: Message,
    pub except: Option<u128>,
}

enum Slot {
    Reserved(Instant),
    /// The broadcast (None: given up).
    Committed(Option<Outgoing>),
}

pub struct Log {
    epoch: String,
    keep: Keep,
    /// The last offset handed out.
    reserved: u64,
    /// The last offset released.
    released: u64,
    /// Offsets after `released`, reserved or committed.
    waiting: BTreeMap<u64, Slot>,
    /// Released messages, oldest first, each with when it was released.
    kept: VecDeque<(u64, Instant, Message)>,
    /// The last offset no longer kept (0: none dropped).
    forgotten: u64,
    /// When an offset was last reserved or committed.
    active: Instant,
}

impl Log {
    pub fn new(epoch: String, keep: Keep) -> Self {
        Self {
            epoch,
            keep,
            reserved: 0,
            released: 0,
            waiting: BTreeMap::new(),
            kept: VecDeque::new(),
            forgotten: 0,
            active: Instant::now(),
        }
    }

    /// Whether nothing was broadcast for longer than the history lasts idle.
    pub fn idle(&self, now: Instant) -> bool {
        now.duration_since(self.active) > self.keep.idle_limit() && self.waiting.is_empty()
    }

    pub fn position(&self) -> Position {
        Position { epoch: self.epoch.clone(), offset: self.released }
    }

    pub fn reserve(&mut self, now: Instant) -> u64 {
        self.active = now;
        self.reserved += 1;
        self.waiting.insert(self.reserved, Slot::Reserved(now));
        self.reserved
    }

    /// The message of a reserved offset (None: the broadcast was given up). Answers what can
    /// be released now, in order: this one, and those that waited for it.
    pub fn commit(&mut self, offset: u64, outgoing: Option<Outgoing>, now: Instant) -> Vec<(u64, Outgoing)> {
        self.active = now;
        if let Some(slot) = self.waiting.get_mut(&offset) {
            *slot = Slot::Committed(outgoing);
        }
        self.release(now)
    }

    /// Gives up offsets reserved longer than [`ABANDONED_AFTER`] ago; answers what that releases.
    pub fn give_up_abandoned(&mut self, now: Instant) -> Vec<(u64, Outgoing)> {
        for slot in self.waiting.values_mut() {
            if let Slot::Reserved(since) = slot
                && now.duration_since(*since) >= ABANDONED_AFTER
            {
                *slot = Slot::Committed(None);
            }
        }
        self.release(now)
    }

    /// Whether a reserved offset still waits for its message.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    fn release(&mut self, now: Instant) -> Vec<(u64, Outgoing)> {
        let mut released = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if !matches!(entry.get(), Slot::Committed(_)) {
                break;
            }
            let (offset, slot) = entry.remove_entry();
            self.released = offset;
            if let Slot::Committed(Some(outgoing)) = slot {
                self.kept.push_back((offset, now, outgoing.message.clone()));
                released.push((offset, outgoing));
            }
        }
        while self.kept.len() > self.keep.count {
            self.drop_oldest();
        }
        self.expire(now);
        released
    }

    fn drop_oldest(&mut self) {
        if let Some((offset, _, _)) = self.kept.pop_front() {
            self.forgotten = offset;
        }
    }

    fn expire(&mut self, now: Instant) {
        let Some(span) = self.keep.span else { return };
        while self.kept.front().is_some_and(|(_, at, _)| now.duration_since(*at) > span) {
            self.drop_oldest();
        }
    }

    /// What a client at `since` in `epoch` missed, in order.
    pub fn since(&mut self, epoch: &str, since: u64, now: Instant) -> Catchup {
        self.expire(now);
        if epoch != self.epoch || since > self.released {
            return Err(Gap::Epoch);
        }
        if since < self.forgotten {
            return Err(Gap::TooOld);
        }
        Ok(self.kept.iter().filter(|(offset, _, _)| *offset > since).map(|(o, _, m)| (*o, m.clone())).collect())
    }
}

/// Histories by what they keep the broadcasts of.
pub type Logs = std::collections::HashMap<Scope, Log>;

/// Forgets the histories idle past their limit; answers what those with offsets that never got
/// their message release now, by scope.
pub fn tend(logs: &mut Logs, now: Instant) -> Vec<(Scope, Vec<(u64, Outgoing)>)> {
    logs.retain(|_, log| !log.idle(now));
    logs.iter_mut()
        .filter(|(_, log)| log.has_waiting())
        .map(|(scope, log)| (scope.clone(), log.give_up_abandoned(now)))
        .collect()
}

/// The history of `scope`, begun (in a new epoch) if there is none yet.
pub fn log_of<'a>(logs: &'a mut Logs, scope: &Scope, keep: Keep) -> &'a mut Log {
    logs.entry(scope.clone()).or_insert_with(|| Log::new(new_epoch(), keep))
}

/// A new epoch's name: random, so a history that was lost never repeats an old one.
pub fn new_epoch() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    random[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<Outgoing> {
        Some(Outgoing { message: Message::Text(s.into()), except: None })
    }

    fn offsets<T>(released: &[(u64, T)]) -> Vec<u64> {
        released.iter().map(|(offset, _)| *offset).collect()
    }

    fn log(count: usize) -> Log {
        Log::new("e1".into(), Keep { count, span: None })
    }

    #[test]
    fn offsets_are_consecutive_and_released_in_order_whatever_order_they_commit_in() {
        let mut log = log(10);
        let now = Instant::now();
        let (one, two, three) = (log.reserve(now), log.reserve(now), log.reserve(now));
        assert_eq!((one, two, three), (1, 2, 3));
        assert!(log.commit(two, text("b"), now).is_empty(), "waits for 1");
        assert!(log.commit(three, text("c"), now).is_empty());
        assert_eq!(offsets(&log.commit(one, text("a"), now)), [1, 2, 3]);
        assert_eq!(log.position(), Position { epoch: "e1".into(), offset: 3 });
        assert!(!log.has_waiting());
    }

    #[test]
    fn a_broadcast_given_up_or_abandoned_releases_those_behind_it() {
        let mut log = log(10);
        let now = Instant::now();
        let (one, two, three) = (log.reserve(now), log.reserve(now), log.reserve(now));
        log.commit(three, text("c"), now);
        assert_eq!(offsets(&log.commit(one, None, now)), Vec::<u64>::new(), "2 still waits");
        assert!(log.give_up_abandoned(now + Duration::from_millis(10)).is_empty());
        assert_eq!(offsets(&log.give_up_abandoned(now + ABANDONED_AFTER)), [3]);
        assert_eq!(log.since("e1", 0, now), Ok(vec![(3, Message::Text("c".into()))]), "no message for 1 and 2");
        assert!(log.commit(two, text("late"), now).is_empty(), "too late: given up");
    }

    #[test]
    fn catching_up_gives_what_was_missed_or_says_why_it_cannot() {
        let mut log = log(3);
        let now = Instant::now();
        for n in 1..=5 {
            let offset = log.reserve(now);
            log.commit(offset, text(&n.to_string()), now);
        }
        assert_eq!(offsets(&log.since("e1", 3, now).unwrap()), [4, 5]);
        assert_eq!(log.since("e1", 2, now).map(|m| offsets(&m)), Ok(vec![3, 4, 5]), "2 is the last forgotten");
        assert_eq!(log.since("e1", 1, now), Err(Gap::TooOld));
        assert_eq!(log.since("e1", 5, now), Ok(vec![]));
        assert_eq!(log.since("e0", 5, now), Err(Gap::Epoch));
        assert_eq!(log.since("e1", 6, now), Err(Gap::Epoch), "an offset this epoch never had");
    }

    #[test]
    fn a_span_forgets_what_is_older() {
        let mut log = Log::new("e".into(), Keep { count: 100, span: Some(Duration::from_secs(60)) });
        let start = Instant::now();
        let first = log.reserve(start);
        log.commit(first, text("old"), start);
        let later = start + Duration::from_secs(50);
        let second = log.reserve(later);
        log.commit(second, text("new"), later);
        assert_eq!(log.since("e", 0, start + Duration::from_secs(70)), Err(Gap::TooOld));
        assert_eq!(offsets(&log.since("e", 1, start + Duration::from_secs(70)).unwrap()), [2]);
    }

    #[test]
    fn an_idle_history_is_forgotten() {
        let mut logs = Logs::new();
        let keep = Keep { count: 5, span: Some(Duration::from_secs(60)) };
        let start = Instant::now();
        let scope = Scope::new("/a", Some("r"));
        let offset = log_of(&mut logs, &scope, keep).reserve(start);
        log_of(&mut logs, &scope, keep).commit(offset, text("x"), start);
        tend(&mut logs, start + Duration::from_secs(30));
        assert!(logs.contains_key(&scope));
        tend(&mut logs, start + Duration::from_secs(61));
        assert!(logs.is_empty());
    }

    #[test]
    fn epochs_differ() {
        assert_ne!(new_epoch(), new_epoch());
        assert_eq!(new_epoch().len(), 12);
    }
}
