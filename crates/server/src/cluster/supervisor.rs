//! `--processes N`: this process runs no Python. It starts N workers (this binary again, with
//! the same flags, the bus's path and its number), carries the bus between them
//! ([`Switchboard`]), restarts a worker that dies, and on SIGINT or SIGTERM passes the signal
//! on, waits for every worker to have closed its clients, and exits 0.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cli::Cli;
use crate::cluster::bus::{Heard, Switchboard};
use crate::invocation::Invocation;
use crate::reuseport;
use crate::signals::{Hangups, Signals};

/// A worker that dies again soon waits longer before its next start, up to this.
const LONGEST_BACKOFF: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A worker that served this long before dying starts again at once.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// After the workers' own shutdown timeout, how long they get to exit before being killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

pub fn run(cli: &Cli, invocation: &Invocation, processes: u32) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the supervisor: {error}")),
    };
    match runtime.block_on(supervise(cli, invocation, processes)) {
        Ok(()) => 0,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> u8 {
    eprintln!("error: {message}");
    1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not every worker has served yet: one that exits now fails the start.
    Starting,
    Serving,
    /// A signal came: the workers are closing their clients.
    Stopping,
}

/// One running worker process.
struct Running {
    pid: u32,
    started: Instant,
}

/// What the supervisor needs to start workers.
struct Launcher {
    /// How this server was started: each worker starts the same way, with the user's own flags.
    invocation: Invocation,
    /// The bus, and the ports resolved here (when the user asked for any free one).
    added: Vec<OsString>,
    exits: mpsc::UnboundedSender<(u32, u32, ExitStatus)>,
}

impl Launcher {
    fn start(&self, number: u32) -> Result<Running, String> {
        let Invocation { program, prefix, flags } = &self.invocation;
        let mut child = tokio::process::Command::new(program)
            .args(prefix)
            .args(flags)
            .args(&self.added)
            .arg("--worker")
            .arg(number.to_string())
            .spawn()
            .map_err(|error| format!("cannot start worker {number} ({}): {error}", program.display()))?;
        let pid = child.id().unwrap_or_default();
        let exits = self.exits.clone();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = exits.send((number, pid, status));
            }
        });
        Ok(Running { pid, started: Instant::now() })
    }
}

async fn supervise(cli: &Cli, invocation: &Invocation, processes: u32) -> Result<(), String> {
    let signals = Signals::install().map_err(|error| format!("cannot install signal handlers: {error}"))?;
    let bus_dir = BusDir::create()?;
    let (_board, mut heard) = Switchboard::listen(&bus_dir.socket())
        .map_err(|error| format!("cannot create the bus between the processes at {}: {error}", bus_dir.0.display()))?;

    // A port 0 (any free port) is chosen here, once, so that every worker shares it.
    let host = cli.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    let mut added: Vec<OsString> = vec!["--bus".into(), bus_dir.socket().into()];
    let mut reserved = Vec::new();
    for (flag, port) in [("--port", cli.port), ("--metrics-port", cli.metrics_port)] {
        if port == Some(0) {
            let (socket, port) = reuseport::reserve_shared(&host)
                .await
                .map_err(|error| format!("cannot find a free port on {host}: {error}"))?;
            reserved.push(socket);
            added.extend([flag.into(), port.to_string().into()]);
        }
    }
    let (exits, mut exited) = mpsc::unbounded_channel();
    let launcher = Launcher { invocation: invocation.clone(), added, exits };
    let mut running = HashMap::new();
    for number in 0..processes {
        running.insert(number, launcher.start(number)?);
    }

    let (restart, mut restarts) = mpsc::unbounded_channel::<u32>();
    let mut backoff: HashMap<u32, Duration> = HashMap::new();
    let mut served: HashSet<u32> = HashSet::new();
    let mut stage = Stage::Starting;
    let mut outcome = Ok(());
    let stop = signals.received();
    tokio::pin!(stop);
    // SIGHUP reloads the workers' TLS certificates: passed on to each.
    let mut hangups = match cli.ssl_certfile {
        Some(_) => Some(Hangups::install().map_err(|error| format!("cannot install the SIGHUP handler: {error}"))?),
        None => None,
    };
    let deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            Some(Heard::Ready { worker, address }) = heard.recv() => {
                let first = served.insert(worker);
                if stage == Stage::Starting && served.len() == processes as usize {
                    stage = Stage::Serving;
                    reserved.clear();
                    let scheme = if cli.ssl_certfile.is_some() { "wss" } else { "ws" };
                    tracing::info!("serving {} on {scheme}://{address} with {processes} processes", cli.app());
                } else if !first {
                    tracing::info!("worker {worker} serves again");
                }
            }
            Some((number, pid, status)) = exited.recv() => {
                if running.get(&number).is_some_and(|worker| worker.pid == pid) {
                    let worker = running.remove(&number);
                    match stage {
                        Stage::Stopping => {}
                        Stage::Starting if !served.contains(&number) => {
                            outcome = Err(format!("worker {number} exited ({status}) before it served: see its output above"));
                            stage = Stage::Stopping;
                            signal_all(&running, libc::SIGTERM);
                        }
                        Stage::Starting | Stage::Serving => {
                            let lived = worker.map_or(Duration::ZERO, |worker| worker.started.elapsed());
                            let wait = next_backoff(backoff.get(&number).copied(), lived);
                            backoff.insert(number, wait);
                            tracing::warn!("worker {number} (pid {pid}) exited ({status}): starting it again in {wait:?}");
                            let restart = restart.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(wait).await;
                                let _ = restart.send(number);
                            });
                        }
                    }
                }
                if stage == Stage::Stopping && running.is_empty() {
                    break;
                }
            }
            Some(number) = restarts.recv(), if stage != Stage::Stopping => {
                match launcher.start(number) {
                    Ok(worker) => {
                        running.insert(number, worker);
                    }
                    Err(error) => tracing::error!("{error}"),
                }
            }
            signal = &mut stop, if stage != Stage::Stopping => {
                stage = Stage::Stopping;
                signal_all(&running, signal);
                let grace = Duration::try_from_secs_f64(cli.shutdown_timeout).unwrap_or_default() + EXIT_GRACE;
                deadline.as_mut().reset(tokio::time::Instant::now() + grace);
                if running.is_empty() {
                    break;
                }
            }
            Some(true) = async { Some(hangups.as_mut()?.received().await) }, if hangups.is_some() => {
                tracing::info!("SIGHUP: passed on to the workers (TLS certificates are read again)");
                signal_all(&running, libc::SIGHUP);
            }
            () = &mut deadline => {
                tracing::warn!("{} worker(s) did not exit in time: killing them", running.len());
                signal_all(&running, libc::SIGKILL);
                deadline.as_mut().reset(tokio::time::Instant::now() + EXIT_GRACE);
            }
        }
    }
    outcome
}

/// How long to wait before starting a worker again that lived `lived` after its last start.
fn next_backoff(last: Option<Duration>, lived: Duration) -> Duration {
    match last {
        Some(last) if lived < STABLE_AFTER => (last * 2).min(LONGEST_BACKOFF),
        _ => FIRST_BACKOFF,
    }
}

fn signal_all(running: &HashMap<u32, Running>, signal: libc::c_int) {
    for worker in running.values() {
        send_signal(worker.pid, signal);
    }
}

#[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std, and Child::kill only sends SIGKILL")]
fn send_signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill has no memory effects; the pid is a child this process started and has
    // not yet reaped (its exit is reported before it is forgotten), so it is not reused.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A private directory for the bus socket, removed with everything in it at the end.
struct BusDir(PathBuf);

impl BusDir {
    fn create() -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("robyn-ws-server-{}", std::process::id()));
        // Left behind by a process that had this pid and was killed: not ours to keep.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path)
            .map_err(|error| format!("cannot create {} for the bus between the processes: {error}", path.display()))?;
        Ok(Self(path))
    }

    fn socket(&self) -> PathBuf {
        self.0.join("bus.sock")
    }
}

impl Drop for BusDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_keeps_dying_waits_longer_each_time() {
        let quick = Duration::from_secs(1);
        let first = next_backoff(None, quick);
        assert_eq!(first, FIRST_BACKOFF);
        let second = next_backoff(Some(first), quick);
        assert_eq!(second, FIRST_BACKOFF * 2);
        assert_eq!(next_backoff(Some(LONGEST_BACKOFF), quick), LONGEST_BACKOFF);
        assert_eq!(
            next_backoff(Some(LONGEST_BACKOFF), STABLE_AFTER),
            FIRST_BACKOFF,
            "a worker that served a while starts over"
        );
    }

    #[test]
    fn the_bus_directory_goes_away_with_its_owner() {
        let dir = BusDir::create().unwrap();
        let path = dir.0.clone();
        std::fs::write(dir.socket(), b"").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
