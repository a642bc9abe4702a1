//! What joins this process's registry to the others' (the local bus of `--processes`, or a
//! broker between hosts). The registry delivers locally first and then hands the fabric what
//! other processes must deliver; what the fabric receives comes back through
//! [`super::Registry::deliver`] and [`super::Registry::deliver_to`], which never hand it on.

use futures_util::future::BoxFuture;
use tokio_tungstenite::tungstenite::Message;

use super::history::{Catchup, Keep, Position};
use super::presence::Scope;

pub trait Fabric: Send + Sync {
    /// A broadcast to an endpoint (by its pattern, the same in every process of the app), or to
    /// one of its rooms, made here.
    fn broadcast(&self, endpoint: &str, room: Option<&str>, message: &Message);
    /// A frame for connection `id`, held by the process tagged `node` (not this one): true
    /// when that process is known to be up and the frame is on its way.
    fn send_to(&self, node: u32, id: u128, message: &Message) -> bool;
    /// Whether an endpoint (or a room of it) has members here, when that changes: a broker
    /// subscribes to what has.
    fn interest(&self, endpoint: &str, room: Option<&str>, present: bool);
    /// Whether this process hears the others now (`/ready` says so).
    fn connected(&self) -> bool;
    /// A presence note for every other node ([`super::Registry::presence_heard`] there).
    fn presence(&self, note: bytes::Bytes);
    /// A frame for every connection of `user` on the node tagged `node` (not this one, and
    /// one presence has heard from): true when the frame is on its way.
    fn send_to_user(&self, node: u32, user: &str, message: &Message) -> bool;

    /// Appends a broadcast to the history of `scope` (kept by the supervisor, or by Redis):
    /// its offset. Every process, this one too, gets it back to deliver in offset order
    /// ([`super::Registry::deliver_kept`]).
    fn append(
        &self,
        scope: &Scope,
        keep: Keep,
        message: Message,
        except: Option<u128>,
    ) -> BoxFuture<'static, Result<u64, String>>;
    /// Reserves the next offset of a history.
    fn reserve(&self, scope: &Scope, keep: Keep) -> BoxFuture<'static, Result<u64, String>>;
    /// The message of a reserved offset (None: given up); the future sends it.
    fn commit(
        &self,
        scope: &Scope,
        keep: Keep,
        offset: u64,
        message: Option<Message>,
        except: Option<u128>,
    ) -> BoxFuture<'static, ()>;
    /// Where a history stands, and what was broadcast after an epoch and offset (None: nothing).
    fn catch_up(
        &self,
        scope: &Scope,
        keep: Keep,
        since: Option<(String, u64)>,
    ) -> BoxFuture<'static, Result<(Position, Catchup), String>>;
    /// Returns once broadcasts to `scope` reach this process (a broker's subscription to its
    /// channel is up), so a recovery misses nothing between what it reads and what follows.
    fn hearing(&self, scope: &Scope) -> BoxFuture<'static, ()>;
}
