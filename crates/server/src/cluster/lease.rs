//! Which process runs each of the app's once handlers (`startup_handler(once="host")` or
//! `once="cluster"`): the one holding its lease, told to the app as `Event::Lease`.
//!
//! - Once per host, among the workers of `--processes`: an exclusive `flock` on a file in the
//!   supervisor's directory. The kernel lets it go the moment its holder dies, however it
//!   dies, and the next waiting worker has it at once. A server alone holds it outright.
//! - Once per cluster, with `--broker`: a key in Redis set only if absent, with an expiry
//!   (`SET NX PX`), renewed by its holder while the value is still its own. A holder that
//!   cannot renew for half the expiry gives the task up, so that by the time the key
//!   expires and another process takes it, it no longer runs here. A holder that shuts down
//!   deletes the key (if still its own), handing over at once. Without a broker, the host is
//!   the cluster.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pyhost::bridge::{Bridge, Event};
use pyhost::{OnceScope, OnceTask};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionLike};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::broker::BrokerLink;

/// How long a cluster lease lasts without renewal: the longest a dead holder's task stays
/// unrun elsewhere.
const LEASE_LASTS: Duration = Duration::from_secs(6);
/// How often a holder renews, and a process without the lease asks for it.
const LEASE_EVERY: Duration = Duration::from_secs(1);
/// How long one Redis command may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Sets the key's expiry again only while it holds this process's value.
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) \
                     else return 0 end";
/// Deletes the key only while it holds this process's value.
const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Where the leases are kept, as this process was started.
pub struct Leases<'a> {
    /// The supervisor's directory, for a worker of `--processes`; none for a server alone.
    pub host_dir: Option<&'a Path>,
    pub broker: Option<&'a BrokerLink>,
    /// This process's id among the cluster's nodes (the lease's value in Redis).
    pub node: String,
}

impl Leases<'_> {
    /// Starts contending for every task's lease; `leaving` ends the cluster leases (handing
    /// them over). Must be called inside the tokio runtime.
    pub fn contend(&self, tasks: &[OnceTask], bridge: &Arc<Bridge>, leaving: &CancellationToken) -> Result<(), String> {
        // One client (the URL parsed once) for every cluster lease; each lease keeps its own
        // connection, so one lease's slow answer never delays another's renewal.
        let client = self.broker.map(|link| link.client(link.url.as_str())).transpose()?;
        for (index, task) in tasks.iter().enumerate() {
            match (task.scope, &client) {
                (OnceScope::Cluster, Some(client)) => {
                    let client = client.clone();
                    let key = format!("robyn:{}:once:{}", client.get_db(), task.name);
                    let lease = ClusterLease { client, key, node: self.node.clone(), task: index };
                    tokio::spawn(lease.hold(bridge.clone(), leaving.clone()));
                }
                (OnceScope::Cluster | OnceScope::Host, _) => match self.host_dir {
                    Some(dir) => wait_for_host_lock(dir.join(format!("once-{index}.lock")), index, bridge.clone())?,
                    None => bridge.push(Event::Lease { task: index, held: true }),
                },
            }
        }
        Ok(())
    }
}

/// A thread waits for the lock (the kernel queues the waiters) and tells the app once it has
/// it; the lock is then held, by the open file, until the process ends.
fn wait_for_host_lock(path: PathBuf, task: usize, bridge: Arc<Bridge>) -> Result<(), String> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| format!("cannot open {} for a once-per-host task: {error}", path.display()))?;
    std::thread::Builder::new()
        .name(format!("once-{task}"))
        .spawn(move || match lock_exclusive(&file) {
            Ok(()) => {
                bridge.push(Event::Lease { task, held: true });
                // Held for the rest of the process's life.
                std::mem::forget(file);
            }
            Err(error) => tracing::error!("cannot lock {} for a once-per-host task: {error}", path.display()),
        })
        .map(drop)
        .map_err(|error| format!("cannot start the thread waiting for a once-per-host task: {error}"))
}

#[allow(unsafe_code, reason = "flock(2) has no wrapper in std before Rust 1.89 (File::lock), above this MSRV")]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    loop {
        // SAFETY: the descriptor is the open file's, which outlives the call; flock has no
        // memory effects.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if locked == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

struct ClusterLease {
    client: redis::Client,
    key: String,
    node: String,
    task: usize,
}

/// Where a process stands with a cluster lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Asking for it every `LEASE_EVERY`.
    Contending,
    /// Holding it, last renewed (or taken) then.
    Holding { renewed: Instant },
}

impl ClusterLease {
    async fn hold(self, bridge: Arc<Bridge>, leaving: CancellationToken) {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let mut connection: Option<MultiplexedConnection> = None;
        let mut standing = Standing::Contending;
        let mut every = tokio::time::interval(LEASE_EVERY);
        loop {
            tokio::select! {
                () = leaving.cancelled() => break,
                _ = every.tick() => {}
            }
            if connection.is_none() {
                connection = self.client.get_multiplexed_async_connection_with_config(&config).await.ok();
            }
            let answer = match connection.as_mut() {
                Some(open) => self.ask(open, standing).await,
                None => Err(()),
            };
            if answer.is_err() {
                connection = None;
            }
            let next = next_standing(standing, answer, Instant::now());
            if next != standing {
                let held = matches!(next, Standing::Holding { .. });
                if matches!(standing, Standing::Contending) || !held {
                    bridge.push(Event::Lease { task: self.task, held });
                }
            }
            standing = next;
        }
        if standing == Standing::Contending {
            return;
        }
        // The task stops here first; then the key goes, for another process to take.
        bridge.push(Event::Lease { task: self.task, held: false });
        if let Some(open) = connection.as_mut() {
            let released: redis::RedisResult<i64> =
                redis::Script::new(RELEASE).key(&self.key).arg(&self.node).invoke_async(open).await;
            if let Err(error) = released {
                tracing::debug!("could not hand the lease {} over at shutdown: {error}", self.key);
            }
        }
    }

    /// Takes the lease (contending) or renews it (holding): whether this process has it now;
    /// Err when Redis did not answer.
    async fn ask(&self, connection: &mut MultiplexedConnection, standing: Standing) -> Result<bool, ()> {
        let lasts = u64::try_from(LEASE_LASTS.as_millis()).unwrap_or(u64::MAX);
        let answered = match standing {
            Standing::Contending => redis::cmd("SET")
                .arg(&self.key)
                .arg(&self.node)
                .arg("NX")
                .arg("PX")
                .arg(lasts)
                .query_async::<Option<String>>(connection)
                .await
                .map(|set| set.is_some()),
            Standing::Holding { .. } => redis::Script::new(RENEW)
                .key(&self.key)
                .arg(&self.node)
                .arg(lasts)
                .invoke_async::<i64>(connection)
                .await
                .map(|renewed| renewed == 1),
        };
        answered.map_err(|error| tracing::debug!("the lease {} could not be asked for: {error}", self.key))
    }
}

/// What one answer (or its absence) makes of a process's standing, at `now`.
fn next_standing(standing: Standing, answer: Result<bool, ()>, now: Instant) -> Standing {
    match (standing, answer) {
        (_, Ok(true)) => Standing::Holding { renewed: now },
        (_, Ok(false)) => Standing::Contending,
        (Standing::Contending, Err(())) => Standing::Contending,
        // Unheard for half the lease: give it up before it expires and another takes it.
        (Standing::Holding { renewed }, Err(())) if now.duration_since(renewed) >= LEASE_LASTS / 2 => {
            Standing::Contending
        }
        (holding @ Standing::Holding { .. }, Err(())) => holding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_taken_kept_and_given_up() {
        let start = Instant::now();
        assert_eq!(next_standing(Standing::Contending, Ok(false), start), Standing::Contending);
        assert_eq!(next_standing(Standing::Contending, Err(()), start), Standing::Contending);
        let held = next_standing(Standing::Contending, Ok(true), start);
        assert_eq!(held, Standing::Holding { renewed: start });
        let later = start + LEASE_EVERY;
        assert_eq!(next_standing(held, Ok(true), later), Standing::Holding { renewed: later });
        // Someone else's now (it expired meanwhile): given up at once.
        assert_eq!(next_standing(held, Ok(false), later), Standing::Contending);
    }

    #[test]
    fn an_unheard_holder_gives_up_before_the_lease_expires() {
        let start = Instant::now();
        let held = Standing::Holding { renewed: start };
        assert_eq!(next_standing(held, Err(()), start + LEASE_EVERY), held);
        assert_eq!(next_standing(held, Err(()), start + LEASE_LASTS / 2), Standing::Contending);
    }
}
