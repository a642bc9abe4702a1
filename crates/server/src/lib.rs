//! robyn-ws-server: serves a Robyn app, its HTTP routes and its WebSockets. The network side
//! (this crate) runs on tokio; the handlers run on CPython (the `pyhost` crate), on one
//! asyncio loop thread. Two programs run it: the standalone binary (`main.rs`, which starts
//! CPython itself) and the `robyn_ws_server` Python package (`crates/pyext`, an extension
//! module running it inside the user's Python); both call [`main`].
//!
//! The modules depend on each other top down, without cycles. Leaves first: `cli`, `config`,
//! `invocation`, `throttle`, `signals`, `reuseport`, `proxies` (who the client is),
//! `admission` (the `--max-connections` places) and `metrics` (what every part counts). Then
//! the subsystems, each a folder: `tls` (the certificates, reloaded on SIGHUP), `ws`
//! (handshake, socket layers, connections, registry), `cluster` (processes and hosts, over the
//! registry; the once handlers' leases), `ops` (probes, stats, memory), and
//! `http` (listener, routing, the app's routes and folders, handing WebSocket handshakes to
//! `ws`); `shutdown` over them all, and this file, which assembles them.

mod admission;
mod cli;
mod cluster;
mod config;
mod http;
mod in_flight;
mod invocation;
mod metrics;
mod ops;
mod proxies;
mod reuseport;
mod shutdown;
mod signals;
mod throttle;
mod tls;
mod ws;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use pyhost::bridge::Bridge;
use pyhost::close_code::Departure;
use pyhost::{LoadedApp, Network, Settings, StartupError, WorkerPlace};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Role};
use crate::cluster::broker::{Broker, BrokerLink};
use crate::cluster::bus::Bus;
use crate::cluster::lease::Leases;
use crate::cluster::supervisor;
use crate::config::{HttpLimits, Keepalive, Limits};
use crate::http::Site;
use crate::http::app::AppRoutes;
use crate::http::listener::{self, Accepting, Answerer};
use crate::http::routing::{HttpMatch, WebSocketRoutes};
pub use crate::invocation::Invocation;
use crate::ops::probes::{OnMainPort, Probe};
use crate::ops::{memory, probes};
use crate::proxies::Proxies;
use crate::tls::{Tls, TlsFiles};
use crate::ws::Shared;
use crate::ws::deflate;
use crate::ws::registry::Registry;
use crate::ws::registry::history::Keep;
use crate::ws::registry::node::Node;

/// How long shutdown waits for the shutdown handlers (and a loop a handler may be blocking).
const PYTHON_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the server as its command line says, until it is stopped; answers the exit status
/// (0 after a clean shutdown, 1 when it could not start, 2 for a usage error).
pub fn main(invocation: &Invocation) -> u8 {
    let arguments = std::iter::once(OsString::from("robyn-ws-server")).chain(invocation.flags.iter().cloned());
    let cli = match Cli::parse_command_line(arguments) {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version print to stdout and succeed; mistakes go to stderr.
            let _ = error.print();
            return u8::try_from(error.exit_code()).unwrap_or(2);
        }
    };
    // A second run in the same process (the Python package's `serve`) keeps the first's logger.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(cli.log_level().tracing())
        .try_init();
    if let Role::Supervisor { processes } = cli.role() {
        return supervisor::run(&cli, invocation, processes);
    }
    match run(&cli) {
        Ok(()) => 0,
        Err(error) => {
            if let Some(details) = &error.details {
                eprintln!("{details}");
            }
            eprintln!("error: {}", error.message);
            1
        }
    }
}

fn failure(message: String) -> StartupError {
    StartupError { details: None, message }
}

/// Runs the app's module; the server serves its app when it calls `app.start()` (or once it
/// has run), until SIGINT or SIGTERM.
fn run(cli: &Cli) -> Result<(), StartupError> {
    let settings =
        Settings { target: cli.app().to_owned(), app_dir: cli.app_dir.clone(), log_level: cli.log_level().python() };
    let cli = cli.clone();
    pyhost::run(&settings, move |app| serve_app(&cli, app))
}

fn serve_app(cli: &Cli, app: LoadedApp) -> Result<(), StartupError> {
    let patterns: Vec<String> = app.endpoints.iter().map(|endpoint| endpoint.path.clone()).collect();
    let (websocket_routes, duplicates) = WebSocketRoutes::new(&patterns).map_err(failure)?;
    let app_routes = AppRoutes::new(&app.http)?;
    announce(&app, &duplicates, &app_routes, on_main_port(cli));
    let proxies = match cli.proxy_headers {
        true => Some(
            Proxies::parse(&cli.forwarded_allow_ips).map_err(|why| failure(format!("--forwarded-allow-ips: {why}")))?,
        ),
        false => None,
    };

    let host = cli.host.clone().or_else(|| app.start_host.clone()).unwrap_or_else(|| "127.0.0.1".into());
    let port = cli.port.or(app.start_port).unwrap_or(8080);
    let io_threads = cli.io_threads.unwrap_or_else(default_io_threads);
    let runtime = Arc::new(
        network_runtime(io_threads).map_err(|error| failure(format!("cannot start the network side: {error}")))?,
    );
    let role = cli.role();
    let bind = |port: u16| match role {
        Role::Worker { .. } => runtime.block_on(reuseport::bind_shared(&host, port)),
        _ => runtime.block_on(TcpListener::bind((host.as_str(), port))),
    };
    let adopt = |fd: i32| {
        let _runtime = runtime.enter();
        reuseport::adopt_inherited(fd)
            .map_err(|error| failure(format!("cannot take the listening socket from the supervisor: {error}")))
    };
    let listener = match cli.listen_fd {
        Some(fd) => adopt(fd)?,
        None => bind(port).map_err(|error| bind_failure(&host, port, &error))?,
    };
    let probes_listener = match (cli.metrics_fd, cli.metrics_port) {
        (Some(fd), _) => Some(adopt(fd)?),
        (None, Some(port)) => Some(bind(port).map_err(|error| bind_failure(&host, port, &error))?),
        (None, None) => None,
    };
    let address =
        listener.local_addr().map_err(|error| failure(format!("cannot read the listening address: {error}")))?;
    tls::install_provider();
    let tls = tls_settings(cli)?;

    let (bridge, network) = if io_threads == 0 {
        (Bridge::for_one_thread(), Network::LoopThread(runtime.clone()))
    } else {
        let bridge = Bridge::new().map_err(|error| failure(format!("cannot create the event bridge: {error}")))?;
        (bridge, Network::OwnThreads)
    };
    let bridge = Arc::new(bridge);
    let keepalive = (cli.ping_interval > 0.0).then(|| Keepalive {
        interval: Duration::from_secs_f64(cli.ping_interval),
        timeout: Duration::from_secs_f64(cli.ping_timeout),
    });
    let limits = Limits {
        max_message_size: cli.max_message_size,
        send_queue: cli.send_queue as usize,
        send_queue_bytes: cli.send_queue_bytes,
        receive_buffer: cli.receive_buffer,
        deflate: !cli.no_deflate,
        max_connections: cli.max_connections.unwrap_or_else(default_max_connections),
        keepalive,
        allowed_origins: websocket_origins(cli, &app),
        http: HttpLimits {
            handshake_timeout: Duration::from_secs_f64(cli.handshake_timeout),
            max_header_size: cli.max_header_size,
            max_headers: usize::from(cli.max_headers),
            max_body_size: cli.max_body_size,
            request_timeout: (cli.request_timeout > 0.0).then(|| Duration::from_secs_f64(cli.request_timeout)),
            sse_keepalive: (cli.sse_keepalive > 0.0).then(|| Duration::from_secs_f64(cli.sse_keepalive)),
        },
    };
    let signals = {
        let _runtime = runtime.enter();
        signals::Signals::install().map_err(|error| failure(format!("cannot install signal handlers: {error}")))?
    };
    let slow_callback = (cli.slow_callback > 0.0).then(|| Duration::from_secs_f64(cli.slow_callback));
    if cli.memory_trim_interval > 0.0 {
        memory::give_back_every(Duration::from_secs_f64(cli.memory_trim_interval));
    }
    let registry = Arc::new(Registry::new(patterns, Node::random(), cli.max_broadcast_size));
    registry.set_presence_grace(Duration::from_secs_f64(cli.presence_grace));
    registry.announce_to(bridge.clone());
    runtime.spawn(registry.clone().expire_presence());
    let keeps = app.endpoints.iter().map(|endpoint| endpoint.history.map(keep_of)).collect();
    registry.keep_histories(keeps, runtime.handle().clone());
    if app.endpoints.iter().any(|endpoint| endpoint.history.is_some()) {
        runtime.spawn(registry.clone().tend_histories());
    }
    let broker = broker_link(cli)?;
    if let Some(link) = &broker {
        let _runtime = runtime.enter();
        registry.join_fabric(Broker::start(link, registry.clone(), bridge.clone()).map_err(failure)?);
    }
    let bus = match role {
        Role::Worker { bus, number } => Some(join_bus(&runtime, bus, number, &registry)?),
        Role::Alone | Role::Supervisor { .. } => None,
    };
    app.set_sync_workers(usize::from(cli.sync_threads))?;
    let node = format!("{:08x}", registry.node.tag());
    let index = match role {
        Role::Worker { number, .. } => number,
        Role::Alone | Role::Supervisor { .. } => 0,
    };
    app.set_worker(&WorkerPlace { index, count: cli.processes, node: node.clone() })?;
    let endpoints = app.endpoints.clone();
    let once_tasks = app.once_tasks.clone();
    let python = app.start(bridge.clone(), registry.clone(), network, slow_callback)?;
    // Cancelled when shutdown begins: the cluster leases are handed over then.
    let leaving = CancellationToken::new();
    if !once_tasks.is_empty() {
        let _runtime = runtime.enter();
        let host_dir = match role {
            Role::Worker { bus, .. } => bus.parent(),
            Role::Alone | Role::Supervisor { .. } => None,
        };
        let leases = Leases { host_dir, broker: broker.as_ref(), node };
        leases.contend(&once_tasks, &bridge, &leaving).map_err(failure)?;
    }
    let state = Arc::new(Shared::new(registry, bridge, limits, deflate::pool(), cli.access_log));
    let site = Site {
        server: state.clone(),
        websocket_routes,
        endpoints,
        app: app_routes,
        stats_path: cli.stats_path.clone(),
        proxies,
        probes_here: on_main_port(cli),
        bus: bus.clone(),
    };
    let answerer = Answerer::Site(Arc::new(site));
    if let Some(probes) = probes_listener {
        let probes_only = probes::ProbesOnly { state: state.clone(), bus: bus.clone() };
        let probes_answerer = Answerer::Probes(Arc::new(probes_only));
        let address = probes.local_addr().map_or_else(|_| "?".into(), |address| address.to_string());
        tracing::info!("/health, /ready and /metrics on http://{address}");
        let accepting = Accepting {
            answerer: probes_answerer,
            limits: state.limits.http,
            admission: None,
            tls: None,
            // Answers from Rust alone, at once: nothing for shutdown to wait for.
            connections: Arc::default(),
        };
        runtime.spawn(listener::accept_until(probes, accepting, CancellationToken::new()));
    }
    let stop = {
        let bus = bus.clone();
        async move {
            let departure = match bus {
                None => {
                    signals.received().await;
                    Departure::Shutdown
                }
                Some(bus) => tokio::select! {
                    _ = signals.received() => Departure::Shutdown,
                    () = bus.lost() => {
                        tracing::warn!("the supervisor is gone: shutting down");
                        Departure::Shutdown
                    }
                    () = bus.restart_asked() => {
                        tracing::debug!("a worker with the new code serves: this one hands over");
                        Departure::Restart
                    }
                },
            };
            leaving.cancel();
            departure
        }
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    match (&bus, role) {
        (Some(bus), Role::Worker { number, .. }) => {
            tracing::debug!("worker {number} serving {} on {scheme}://{address}", cli.app());
            bus.ready(number, address.to_string());
        }
        _ => tracing::info!("serving {} on {scheme}://{address}", cli.app()),
    }

    if let Some(tls) = &tls {
        let _runtime = runtime.enter();
        let hangups = signals::Hangups::install()
            .map_err(|error| failure(format!("cannot install the SIGHUP handler: {error}")))?;
        runtime.spawn(reload_certificates_on(hangups, tls.clone()));
    }
    let accepting = Accepting {
        answerer,
        limits: state.limits.http,
        admission: Some(state.admission.clone()),
        tls: tls.clone(),
        connections: state.http_connections.clone(),
    };
    let serving = serve(
        listener,
        accepting,
        stop,
        state,
        Duration::try_from_secs_f64(cli.shutdown_timeout.max(0.0)).unwrap_or(Duration::from_secs(10)),
    );
    if io_threads == 0 {
        // The loop thread (or its standby) runs the network side: wait for it to have shut down.
        let (done, shut_down) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            serving.await;
            let _ = done.send(());
        });
        let _ = shut_down.recv();
    } else {
        runtime.block_on(serving);
    }
    if !python.wait(PYTHON_STOP_TIMEOUT) {
        tracing::warn!(
            "the Python loop did not stop within {PYTHON_STOP_TIMEOUT:?} (is a handler blocking it?): exiting anyway"
        );
    }
    Ok(())
}

/// `--broker` and `--broker-ca`, with the CA file read now.
fn broker_link(cli: &Cli) -> Result<Option<BrokerLink>, StartupError> {
    let Some(url) = &cli.broker else { return Ok(None) };
    let mut link = BrokerLink { url: url.clone(), ca_certs: None };
    if let Some(path) = &cli.broker_ca {
        if !url.starts_with("rediss://") {
            return Err(failure(format!(
                "--broker-ca is for a TLS broker: the --broker URL {} would start with rediss://",
                link.redacted()
            )));
        }
        link.ca_certs =
            Some(std::fs::read(path).map_err(|error| failure(format!("--broker-ca {}: {error}", path.display())))?);
    }
    Ok(Some(link))
}

/// TLS settings from `--ssl-certfile` and the rest, read now: a file that does not load stops
/// the start.
fn tls_settings(cli: &Cli) -> Result<Option<Arc<Tls>>, StartupError> {
    let (Some(certfile), Some(keyfile)) = (&cli.ssl_certfile, &cli.ssl_keyfile) else { return Ok(None) };
    let files = TlsFiles {
        certfile: certfile.clone(),
        keyfile: keyfile.clone(),
        keyfile_password: cli.ssl_keyfile_password.clone(),
        ca_certs: cli.ssl_ca_certs.clone(),
        client_certs: cli.ssl_cert_reqs,
    };
    Tls::load(files).map(|tls| Some(Arc::new(tls))).map_err(failure)
}

/// Each SIGHUP reads the certificate and key again: new handshakes get the new ones, open
/// connections keep theirs. A renewal without a restart.
async fn reload_certificates_on(mut hangups: signals::Hangups, tls: Arc<Tls>) {
    while hangups.received().await {
        let certfile = tls.files().certfile.display();
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded from {certfile}"),
            Err(error) => tracing::error!("SIGHUP: {error}; the previous certificate stays in use"),
        }
    }
}

/// Accepts until SIGINT or SIGTERM (or, under `--reload`, until the supervisor says a worker
/// with new code took over), then closes every connection and stops the interpreter side
/// (see `shutdown`).
async fn serve(
    listener: TcpListener,
    accepting: Accepting,
    stop_when: impl Future<Output = Departure>,
    state: Arc<Shared>,
    grace: Duration,
) {
    let stop = CancellationToken::new();
    let accepting = tokio::spawn(listener::accept_until(listener, accepting, stop.clone()));
    let departure = stop_when.await;
    stop.cancel();
    let _ = accepting.await;
    tracing::info!("no longer accepting connections; closing {} open connection(s)", state.registry.live());
    shutdown::close_all(&state, grace, departure).await;
}

/// What an endpoint's `history=N, history_ttl=S` keeps.
fn keep_of((count, span): (usize, Option<f64>)) -> Keep {
    Keep { count, span: span.map(Duration::from_secs_f64) }
}

/// Joins the supervisor's bus as worker `number`: from here on this worker's numbers go into
/// everyone's `/metrics`, and (unless a broker joins every process already) broadcasts and
/// `send_to` reach the other workers' clients.
fn join_bus(
    runtime: &tokio::runtime::Runtime,
    path: &std::path::Path,
    number: u32,
    registry: &Arc<Registry>,
) -> Result<Arc<Bus>, StartupError> {
    let _runtime = runtime.enter();
    let bus = runtime.block_on(Bus::join(path, number, registry.clone())).map_err(|error| {
        failure(format!("worker {number} cannot join the supervisor's bus at {}: {error}", path.display()))
    })?;
    if !registry.has_fabric() {
        bus.carry();
        registry.join_fabric(bus.clone());
    }
    let counted = registry.clone();
    bus.report_metrics(move || counted.snapshot());
    Ok(bus)
}

/// The runtime the network side runs on: with `io_threads` of its own, or (0) a current-thread
/// runtime that the Python loop thread runs between its turns.
fn network_runtime(io_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if io_threads == 0 {
        return tokio::runtime::Builder::new_current_thread().enable_all().build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads)
        .thread_name("robyn-ws-io")
        .enable_all()
        .build()
}

/// Every connection is a file descriptor: the default cap leaves a few for everything else
/// (the listener, Python's files, logs, the sockets let in over the limit to be refused), so
/// the next client gets a 503, not a failed accept.
fn default_max_connections() -> usize {
    open_file_limit().saturating_sub(64).max(1)
}

/// Raises the soft open-file limit to the hard one, as servers do, and returns it.
#[allow(unsafe_code, reason = "getrlimit(2) and setrlimit(2) have no safe wrapper in std")]
fn open_file_limit() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

/// The network side on the loop thread: measured faster for one message in and one out, as
/// fast for fan-out, on this project's 2-core machines (ARCHITECTURE.md); more cores are more
/// processes.
fn default_io_threads() -> usize {
    0
}

/// Whose pages may open the app's WebSockets: `--allowed-origin`'s when given, else the
/// app's `ALLOW_CORS` origins (none listed, or `*` among them: any page).
fn websocket_origins(cli: &Cli, app: &LoadedApp) -> Vec<String> {
    if !cli.allowed_origins.is_empty() {
        return cli.allowed_origins.clone();
    }
    let origins = &app.http.cors_origins;
    if origins.iter().any(|origin| origin == "*") { Vec::new() } else { origins.clone() }
}

fn on_main_port(cli: &Cli) -> OnMainPort {
    match (cli.metrics_port, cli.expose_metrics) {
        (Some(_), _) => OnMainPort::Nothing,
        (None, false) => OnMainPort::HealthAndReady,
        (None, true) => OnMainPort::All,
    }
}

fn announce(app: &LoadedApp, duplicates: &[String], app_routes: &AppRoutes, probes_here: OnMainPort) {
    if app.endpoints.is_empty() && app.http.routes.is_empty() && app.http.static_mounts.is_empty() {
        tracing::warn!("the app has no routes: every request will get 404");
    }
    if !app.endpoints.is_empty() {
        let paths: Vec<&str> = app.endpoints.iter().map(|endpoint| endpoint.path.as_str()).collect();
        tracing::info!("WebSocket routes: {}", paths.join(", "));
    }
    if !app.http.routes.is_empty() {
        tracing::info!("{} HTTP route(s)", app.http.routes.len());
    }
    for path in duplicates {
        tracing::warn!("{path} has several handlers: the last one registered serves it");
    }
    if probes_here != OnMainPort::Nothing {
        let taken: Vec<&str> = ["/health", "/ready", "/metrics"]
            .into_iter()
            .filter(|path| Probe::at(path).is_some_and(|probe| probes_here.serves(&probe)))
            .filter(|path| matches!(app_routes.routes.lookup(&axum::http::Method::GET, path), HttpMatch::Route(_)))
            .collect();
        if !taken.is_empty() {
            tracing::info!(
                "{} answered by the app's own route(s); the server's probes are there only with --metrics-port",
                taken.join(", ")
            );
        }
    }
}

fn bind_failure(host: &str, port: u16, error: &std::io::Error) -> StartupError {
    let hint = match error.kind() {
        std::io::ErrorKind::AddrInUse => ": another process is listening there; stop it or pick another --port",
        std::io::ErrorKind::PermissionDenied => ": ports below 1024 need privileges; pick another --port",
        std::io::ErrorKind::AddrNotAvailable => ": this machine has no such address; check --host",
        _ => "",
    };
    failure(format!("cannot listen on {host}:{port}: {error}{hint}"))
}
