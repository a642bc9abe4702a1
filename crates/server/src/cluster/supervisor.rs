//! `--processes N`: this process runs no Python. It starts N workers (this binary again, with
//! the same flags, the bus's path and its number), carries the bus between them
//! ([`Switchboard`]), restarts a worker that dies, and on SIGINT or SIGTERM passes the signal
//! on, waits for every worker to have closed its clients, and exits 0. Under `--reload` (even
//! with one process) it also starts a new generation of workers when the app's files change
//! and has the old one hand over once the new one serves (`reload`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cli::Cli;
use crate::cluster::bus::{Heard, Switchboard};
use crate::cluster::reload::glob::Filter;
use crate::cluster::reload::watch::Watch;
use crate::cluster::reload::{Generation, Generations, Step};
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
    /// No generation has served yet: without `--reload`, a worker that exits now fails the
    /// start; with it, the supervisor waits for a change.
    Starting,
    Serving,
    /// A signal came: the workers are closing their clients.
    Stopping,
}

/// One running worker process.
struct Running {
    number: u32,
    /// Which version of the code it runs (always 0 without `--reload`).
    generation: Generation,
    started: Instant,
    /// It has reported that it serves (since its last start).
    served: bool,
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
    /// Starts worker `number`; answers its pid.
    fn start(&self, number: u32) -> Result<u32, String> {
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
        Ok(pid)
    }
}

/// The worker processes, by pid: under `--reload` two generations run side by side while the
/// new one takes over.
struct Workers {
    launcher: Launcher,
    running: HashMap<u32, Running>,
    board: Arc<Switchboard>,
    /// Told the pid of a worker asked to hand over that may not have exited yet.
    overdue: mpsc::UnboundedSender<u32>,
    /// How long a worker asked to hand over gets to exit before it is killed.
    handover_grace: Duration,
}

impl Workers {
    fn start(&mut self, number: u32, generation: Generation) -> Result<(), String> {
        let pid = self.launcher.start(number)?;
        self.running.insert(pid, Running { number, generation, started: Instant::now(), served: false });
        Ok(())
    }

    fn start_generation(&mut self, generation: Generation, processes: u32) -> Result<(), String> {
        (0..processes).try_for_each(|number| self.start(number, generation))
    }

    /// Asks every worker of `generation` to hand over (close its clients with 1012, end its
    /// streams, exit), and kills any that has not exited once its grace is over.
    fn retire(&self, generation: Generation) {
        for (&pid, _) in self.running.iter().filter(|(_, worker)| worker.generation == generation) {
            if !self.board.restart(pid) {
                // Not on the bus (it was just restarting): it stops as for SIGTERM, with 1001.
                send_signal(pid, libc::SIGTERM);
            }
            let (overdue, grace) = (self.overdue.clone(), self.handover_grace);
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = overdue.send(pid);
            });
        }
    }

    fn signal_generation(&self, generation: Generation, signal: libc::c_int) {
        for (&pid, _) in self.running.iter().filter(|(_, worker)| worker.generation == generation) {
            send_signal(pid, signal);
        }
    }

    fn signal_all(&self, signal: libc::c_int) {
        for &pid in self.running.keys() {
            send_signal(pid, signal);
        }
    }
}

async fn supervise(cli: &Cli, invocation: &Invocation, processes: u32) -> Result<(), String> {
    let signals = Signals::install().map_err(|error| format!("cannot install signal handlers: {error}"))?;
    let bus_dir = BusDir::create()?;
    let (board, mut heard) = Switchboard::listen(&bus_dir.socket())
        .map_err(|error| format!("cannot create the bus between the processes at {}: {error}", bus_dir.0.display()))?;

    // A port 0 (any free port) is chosen here, once, so that every worker shares it.
    let host = cli.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    let mut added: Vec<OsString> = vec!["--bus".into(), bus_dir.socket().into()];
    let mut reserved = Vec::new();
    // Under --reload, the sockets every generation of workers inherits (held to the end).
    let mut inherited = Vec::new();
    for (flag, fd_flag, port) in
        [("--port", "--listen-fd", cli.port), ("--metrics-port", "--metrics-fd", cli.metrics_port)]
    {
        match port {
            // Only for a port the flags name: one the app's `app.start(port=...)` names is
            // known in the workers alone, which then share it with SO_REUSEPORT.
            Some(port) if cli.reloads() => {
                let socket = reuseport::listen_inherited(&host, port)
                    .await
                    .map_err(|error| format!("cannot listen on {host}:{port}: {error}"))?;
                added.extend([fd_flag.into(), reuseport::inherited_number(&socket).to_string().into()]);
                inherited.push(socket);
            }
            Some(0) => {
                let (socket, port) = reuseport::reserve_shared(&host)
                    .await
                    .map_err(|error| format!("cannot find a free port on {host}: {error}"))?;
                reserved.push(socket);
                added.extend([flag.into(), port.to_string().into()]);
            }
            _ => {}
        }
    }
    let mut watch = match cli.reloads() {
        true => {
            let watch = Watch::start(&reload_roots(cli), Filter::new(&cli.reload_includes, &cli.reload_excludes)?)?;
            tracing::info!("--reload: watching {}", watch.roots());
            Some(watch)
        }
        false => None,
    };
    let (exits, mut exited) = mpsc::unbounded_channel();
    let (overdue, mut overdue_pids) = mpsc::unbounded_channel();
    let shutdown_grace = Duration::try_from_secs_f64(cli.shutdown_timeout).unwrap_or_default() + EXIT_GRACE;
    let mut workers = Workers {
        launcher: Launcher { invocation: invocation.clone(), added, exits },
        running: HashMap::new(),
        board,
        overdue,
        handover_grace: shutdown_grace,
    };
    let mut generations = Generations::new(processes);
    workers.start_generation(0, processes)?;

    let (restart, mut restarts) = mpsc::unbounded_channel::<(u32, Generation)>();
    let mut backoff: HashMap<u32, Duration> = HashMap::new();
    let mut stage = Stage::Starting;
    let mut outcome = Ok(());
    // When the last burst of changes was seen, to say how long the new code took to serve.
    let mut changed_at = Instant::now();
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
        let mut steps = Vec::new();
        tokio::select! {
            Some(Heard::Ready { worker, pid, address }) = heard.recv() => {
                let Some(running) = workers.running.get_mut(&pid) else { continue };
                running.served = true;
                let generation = running.generation;
                steps = generations.ready(generation, worker);
                if steps.is_empty() && generations.serving() == Some(generation) {
                    tracing::info!("worker {worker} serves again");
                }
                for step in &steps {
                    if let Step::Serve { retired: None, .. } = step {
                        stage = Stage::Serving;
                        reserved.clear();
                        let processes = match processes {
                            1 => String::new(),
                            _ => format!(" with {processes} processes"),
                        };
                        let scheme = if cli.ssl_certfile.is_some() { "wss" } else { "ws" };
                        tracing::info!("serving {} on {scheme}://{address}{processes}", cli.app());
                    }
                }
            }
            Some((number, pid, status)) = exited.recv() => {
                if let Some(worker) = workers.running.remove(&pid) {
                    let on_its_way_in = !worker.served && generations.serving() != Some(worker.generation);
                    if stage == Stage::Stopping {
                    } else if !generations.wants(worker.generation) {
                        // Replaced by new code, or of new code given up.
                        tracing::debug!("worker {number} (pid {pid}) of the old code exited ({status})");
                        let replaced = |other: &Running| other.served && !generations.wants(other.generation);
                        if replaced(&worker) && !workers.running.values().any(replaced) {
                            tracing::info!("the old workers have exited: only the new code serves");
                        }
                    } else if on_its_way_in {
                        steps = generations.exited_early(worker.generation);
                        if watch.is_none() && !steps.is_empty() {
                            outcome = Err(format!("worker {number} exited ({status}) before it served: see its output above"));
                            stage = Stage::Stopping;
                            workers.signal_all(libc::SIGTERM);
                            steps.clear();
                        }
                    } else {
                        let wait = next_backoff(backoff.get(&number).copied(), worker.started.elapsed());
                        backoff.insert(number, wait);
                        tracing::warn!("worker {number} (pid {pid}) exited ({status}): starting it again in {wait:?}");
                        let (restart, generation) = (restart.clone(), worker.generation);
                        tokio::spawn(async move {
                            tokio::time::sleep(wait).await;
                            let _ = restart.send((number, generation));
                        });
                    }
                }
                if stage == Stage::Stopping && workers.running.is_empty() {
                    break;
                }
            }
            Some((number, generation)) = restarts.recv(), if stage != Stage::Stopping => {
                // Unless new code took over meanwhile.
                if generations.wants(generation)
                    && let Err(error) = workers.start(number, generation)
                {
                    tracing::error!("{error}");
                }
            }
            Some(files) = next_change(&mut watch), if stage != Stage::Stopping => {
                changed_at = Instant::now();
                tracing::info!("{} changed: starting workers with the new code", describe(&files));
                steps = generations.changed();
            }
            Some(pid) = overdue_pids.recv() => {
                if let Some(worker) = workers.running.get(&pid) {
                    tracing::warn!(
                        "worker {} (pid {pid}) of the old code has not exited {:?} after it was asked to: killing it",
                        worker.number,
                        workers.handover_grace
                    );
                    send_signal(pid, libc::SIGKILL);
                }
            }
            signal = &mut stop, if stage != Stage::Stopping => {
                stage = Stage::Stopping;
                workers.signal_all(signal);
                deadline.as_mut().reset(tokio::time::Instant::now() + shutdown_grace);
                if workers.running.is_empty() {
                    break;
                }
            }
            Some(true) = async { Some(hangups.as_mut()?.received().await) }, if hangups.is_some() => {
                tracing::info!("SIGHUP: passed on to the workers (TLS certificates are read again)");
                workers.signal_all(libc::SIGHUP);
            }
            () = &mut deadline => {
                tracing::warn!("{} worker(s) did not exit in time: killing them", workers.running.len());
                workers.signal_all(libc::SIGKILL);
                deadline.as_mut().reset(tokio::time::Instant::now() + EXIT_GRACE);
            }
        }
        // What the generations decided, carried out in order (a start that cannot even spawn
        // counts as a failed start).
        let mut steps = std::collections::VecDeque::from(steps);
        while let Some(step) = steps.pop_front() {
            match step {
                Step::Start(generation) => {
                    if let Err(error) = workers.start_generation(generation, processes) {
                        tracing::error!("{error}");
                        steps.extend(generations.exited_early(generation));
                    }
                }
                Step::Serve { retired: None, .. } => {}
                Step::Serve { generation, retired: Some(old) } => {
                    tracing::info!(
                        "reloaded: the new code serves ({} ms after the change); the old workers hand over",
                        changed_at.elapsed().as_millis()
                    );
                    tracing::debug!("generation {generation} replaces {old}");
                    workers.retire(old);
                }
                Step::Abandon { generation, serving } => {
                    workers.signal_generation(generation, libc::SIGTERM);
                    match serving {
                        Some(_) => tracing::error!(
                            "the new code did not start (the error is above): the old code still serves; save a fix to try again"
                        ),
                        None => tracing::error!("the app did not start (the error is above): save a fix to try again"),
                    }
                }
            }
        }
    }
    drop(inherited);
    outcome
}

/// The next burst of changes, or never without `--reload`.
async fn next_change(watch: &mut Option<Watch>) -> Option<Vec<PathBuf>> {
    match watch {
        Some(watch) => watch.changes.recv().await,
        None => std::future::pending().await,
    }
}

/// `a.py`, `a.py and b.py`, `a.py and 4 more files`.
fn describe(files: &[PathBuf]) -> String {
    let name = |path: &PathBuf| path.display().to_string();
    match files {
        [] => "nothing".into(),
        [one] => name(one),
        [one, two] => format!("{} and {}", name(one), name(two)),
        [one, rest @ ..] => format!("{} and {} more files", name(one), rest.len()),
    }
}

/// The directories `--reload` watches: `--reload-dir`'s, else the app's directory and, for an
/// `--app` given as a path to a file, that file's directory.
fn reload_roots(cli: &Cli) -> Vec<PathBuf> {
    if !cli.reload_dirs.is_empty() {
        return cli.reload_dirs.clone();
    }
    let mut roots = vec![cli.app_dir.clone()];
    let app = cli.app();
    let file = app.rsplit_once(':').filter(|(path, _)| path.ends_with(".py")).map_or(app, |(path, _)| path);
    if file.ends_with(".py") {
        let parent = Path::new(file).parent().filter(|parent| !parent.as_os_str().is_empty());
        roots.push(parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf));
    }
    roots
}

/// How long to wait before starting a worker again that lived `lived` after its last start.
fn next_backoff(last: Option<Duration>, lived: Duration) -> Duration {
    match last {
        Some(last) if lived < STABLE_AFTER => (last * 2).min(LONGEST_BACKOFF),
        _ => FIRST_BACKOFF,
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
