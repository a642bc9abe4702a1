//! The histories of the app's endpoints (`@app.websocket(path, history=N)`): kept in this
//! process when it is alone, by the supervisor for the workers of `--processes`, by Redis
//! across hosts (the fabric says which). A kept broadcast reaches clients only once its
//! history releases it, in offset order, so every client sees a room's messages in the same
//! order as the history keeps them; and a client that recovers gets what it missed, then what
//! was broadcast meanwhile, each once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use pyhost::bridge::{Answer, Event, Frame, Missed, Now, Position, Recovered, Token};
use pyhost::locks::{lock, read};
use tokio_tungstenite::tungstenite::Message;

use super::history::{Catchup, Keep, Outgoing, log_of, tend};
use super::presence::Scope;
use super::{Link, Registry};

/// How often reserved offsets are checked for a message that never came, and histories for
/// being idle.
const TEND_EVERY: Duration = Duration::from_millis(500);

impl Registry {
    /// What each endpoint keeps (by endpoint index), set once before serving.
    pub fn keep_histories(&self, keeps: Vec<Option<Keep>>, runtime: tokio::runtime::Handle) {
        let _ = self.keeps.set(keeps);
        let _ = self.runtime.set(runtime);
    }

    fn keep(&self, endpoint: usize) -> Option<Keep> {
        self.keeps.get().and_then(|keeps| keeps.get(endpoint).copied().flatten())
    }

    fn scope(&self, endpoint: usize, room: Option<&str>) -> Scope {
        Scope::new(&self.patterns[endpoint], room)
    }

    /// Runs `asking` on the network side and hands its answer to the app as `token`'s.
    fn answer_later<T: Send + 'static>(
        &self,
        token: Token,
        asking: BoxFuture<'static, T>,
        answer: impl FnOnce(T) -> Answer + Send + 'static,
    ) {
        let (Some(runtime), Some(bridge)) = (self.runtime.get(), self.announcer.get().cloned()) else { return };
        runtime.spawn(async move {
            let outcome = asking.await;
            bridge.push(Event::Answer(token, answer(outcome)));
        });
    }

    /// `broadcast(data)` on an endpoint with a history: its offset.
    pub fn keep_broadcast(
        &self,
        endpoint: usize,
        room: Option<&str>,
        message: Message,
        except: Option<u128>,
        token: Token,
    ) -> Now<u64> {
        let Some(keep) = self.keep(endpoint) else { return Some(Err(no_history(&self.patterns[endpoint]))) };
        self.metrics.broadcasts.fetch_add(1, Ordering::Relaxed);
        let scope = self.scope(endpoint, room);
        let Some(fabric) = self.fabric.get() else {
            let mut logs = lock(&self.logs);
            let log = log_of(&mut logs, &scope, keep);
            let now = Instant::now();
            let offset = log.reserve(now);
            let released = log.commit(offset, Some(Outgoing { message, except }), now);
            self.offer_released(endpoint, room, released);
            return Some(Ok(offset));
        };
        self.answer_later(token, fabric.append(&scope, keep, message, except), Answer::Offset);
        None
    }

    /// Reserves the next offset of a history (`broadcast(callable)`).
    pub fn reserve_offset(&self, endpoint: usize, room: Option<&str>, token: Token) -> Now<u64> {
        let Some(keep) = self.keep(endpoint) else { return Some(Err(no_history(&self.patterns[endpoint]))) };
        let scope = self.scope(endpoint, room);
        let Some(fabric) = self.fabric.get() else {
            return Some(Ok(log_of(&mut lock(&self.logs), &scope, keep).reserve(Instant::now())));
        };
        self.answer_later(token, fabric.reserve(&scope, keep), Answer::Offset);
        None
    }

    /// The message of a reserved offset (None: given up).
    pub fn commit_offset(
        &self,
        endpoint: usize,
        room: Option<&str>,
        offset: u64,
        message: Option<Message>,
        except: Option<u128>,
    ) {
        let Some(keep) = self.keep(endpoint) else { return };
        if message.is_some() {
            self.metrics.broadcasts.fetch_add(1, Ordering::Relaxed);
        }
        let scope = self.scope(endpoint, room);
        let Some(fabric) = self.fabric.get() else {
            let mut logs = lock(&self.logs);
            let outgoing = message.map(|message| Outgoing { message, except });
            let released = log_of(&mut logs, &scope, keep).commit(offset, outgoing, Instant::now());
            self.offer_released(endpoint, room, released);
            return;
        };
        let sending = fabric.commit(&scope, keep, offset, message, except);
        if let Some(runtime) = self.runtime.get() {
            runtime.spawn(sending);
        }
    }

    /// What was broadcast after `since` (an epoch and an offset); None: only the position.
    pub fn catch_up(
        &self,
        endpoint: usize,
        room: Option<&str>,
        since: Option<(&str, u64)>,
        token: Token,
    ) -> Now<Missed> {
        let Some(keep) = self.keep(endpoint) else { return Some(Err(no_history(&self.patterns[endpoint]))) };
        let scope = self.scope(endpoint, room);
        let Some(fabric) = self.fabric.get() else {
            let mut logs = lock(&self.logs);
            let log = log_of(&mut logs, &scope, keep);
            let catchup = match since {
                Some((epoch, offset)) => log.since(epoch, offset, Instant::now()),
                None => Ok(Vec::new()),
            };
            return Some(Ok(missed_of(log.position(), catchup)));
        };
        let since = since.map(|(epoch, offset)| (epoch.to_owned(), offset));
        self.answer_later(token, fabric.catch_up(&scope, keep, since), |outcome| {
            Answer::Missed(outcome.map(|(position, catchup)| missed_of(position, catchup)))
        });
        None
    }

    /// The registry's own handle on a link (None once it has ended).
    pub(super) fn link_of(&self, link: &Link) -> Option<Arc<Link>> {
        read(&self.endpoints[link.endpoint]).get(&link.key).cloned()
    }

    /// `websocket.recover(room, since, epoch)`: see [`pyhost::bridge::NetworkLink::recover`].
    pub(super) fn recover(
        self: &Arc<Self>,
        link: &Arc<Link>,
        room: Option<&str>,
        epoch: &str,
        since: u64,
        token: Token,
    ) -> Now<Recovered> {
        let endpoint = link.endpoint;
        let Some(keep) = self.keep(endpoint) else { return Some(Err(no_history(&self.patterns[endpoint]))) };
        let scope = self.scope(endpoint, room);
        let Some(fabric) = self.fabric.get() else {
            // Nothing is released while the logs are locked: what was missed and what follows
            // meet exactly.
            let mut logs = lock(&self.logs);
            let log = log_of(&mut logs, &scope, keep);
            let catchup = log.since(epoch, since, Instant::now());
            let position = log.position();
            let queued = catchup.map(|missed| link.end_recovery(room, missed, position.offset));
            self.start_receiving(link, room);
            return Some(Ok(Recovered { position, queued }));
        };
        link.begin_recovery(room);
        self.recovering.fetch_add(1, Ordering::AcqRel);
        self.start_receiving(link, room);
        let hearing = fabric.hearing(&scope);
        let asking = fabric.catch_up(&scope, keep, Some((epoch.to_owned(), since)));
        let (registry, link, room) = (self.clone(), link.clone(), room.map(str::to_owned));
        let finish = async move {
            // Read the history only once what follows it reaches this process.
            hearing.await;
            let outcome = asking.await;
            let answer = outcome.map(|(position, catchup): (Position, Catchup)| {
                let (missed, queued) = match catchup {
                    Ok(missed) => (missed, Ok(())),
                    Err(gap) => (Vec::new(), Err(gap)),
                };
                let count = link.end_recovery(room.as_deref(), missed, position.offset);
                Recovered { position, queued: queued.map(|()| count) }
            });
            if answer.is_err() {
                // Nothing to catch up from: what was held goes out as it is.
                link.end_recovery(room.as_deref(), Vec::new(), 0);
            }
            registry.recovering.fetch_sub(1, Ordering::AcqRel);
            answer
        };
        self.answer_later(token, Box::pin(finish), Answer::Recovered);
        None
    }

    /// A recovering connection joins its room, or (None) starts getting the endpoint's
    /// broadcasts.
    fn start_receiving(&self, link: &Link, room: Option<&str>) {
        match room {
            Some(room) => self.join_room(link, room),
            None => link.open_broadcasts(),
        }
    }

    /// A kept broadcast another process released (the supervisor or Redis), for this one's clients.
    pub fn deliver_kept(
        &self,
        pattern: &str,
        room: Option<&str>,
        offset: u64,
        message: &Message,
        except: Option<u128>,
    ) {
        if let Some(&endpoint) = self.by_pattern.get(pattern) {
            self.offer_kept(endpoint, room, offset, message, except);
        }
    }

    fn offer_released(&self, endpoint: usize, room: Option<&str>, released: Vec<(u64, Outgoing)>) {
        for (offset, Outgoing { message, except }) in released {
            self.offer_kept(endpoint, room, offset, &message, except);
        }
    }

    /// A released broadcast to the joined connections of an endpoint or room (a recovering
    /// one holds it instead).
    fn offer_kept(&self, endpoint: usize, room: Option<&str>, offset: u64, message: &Message, except: Option<u128>) {
        let recovering = self.recovering.load(Ordering::Acquire) > 0;
        self.visit_members(endpoint, room, |links| {
            for link in links.values() {
                if Some(link.id) == except || (recovering && link.hold_if_recovering(room, offset, message)) {
                    continue;
                }
                if link.is_joined() {
                    link.offer(message.clone());
                }
            }
        });
    }

    /// Gives up offsets reserved and never committed, and forgets idle histories (those this
    /// process keeps itself).
    pub async fn tend_histories(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TEND_EVERY);
        loop {
            tick.tick().await;
            let mut logs = lock(&self.logs);
            for (scope, released) in tend(&mut logs, Instant::now()) {
                if let Some(&endpoint) = self.by_pattern.get(&scope.endpoint) {
                    self.offer_released(endpoint, scope.room.as_deref(), released);
                }
            }
        }
    }
}

fn missed_of(position: Position, catchup: Catchup) -> Missed {
    let messages = catchup.map(|missed| missed.into_iter().map(|(_, message)| frame_of(message)).collect());
    Missed { position, messages }
}

/// A kept message as the app gets it back.
fn frame_of(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::Text(text.as_str().to_owned()),
        other => Frame::Binary(other.into_data()),
    }
}

fn no_history(pattern: &str) -> String {
    format!("{pattern} keeps no history: declare it with @app.websocket({pattern:?}, history=100)")
}
