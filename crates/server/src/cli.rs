//! Command-line flags.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "robyn-ws-server",
    version,
    about = "Serve a Robyn-style Python WebSocket app (`@app.websocket(...)` handlers) from a Rust server.",
    after_help = "Examples: robyn-ws-server --app pyapp.main --port 8080\n          robyn-ws-server app.py",
    // The supervisor of --processes starts its workers with its own flags and a few more
    // (the port it resolved): the last value given wins.
    args_override_self = true
)]
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line switch of its own, independent of the others")]
pub struct Cli {
    /// The app to serve: `module`, `module:attr` (naming the Robyn instance), or a path to a
    /// .py file (optionally `:attr`).
    #[arg(long, env = "ROBYN_APP", value_name = "MODULE[:ATTR]")]
    app: Option<String>,

    /// The app, as `--app` takes it, without the flag: `robyn-ws-server app.py` (read as
    /// `python app.py` is, for an app that a real Robyn installed beside it would otherwise
    /// run). It wins over ROBYN_APP; `--app` beside it is an error.
    #[arg(value_name = "APP")]
    app_argument: Option<String>,

    /// Directory the app is imported from; it goes first on sys.path.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub app_dir: PathBuf,

    /// Address to listen on. [default: app.start(host=...) if called, else 127.0.0.1]
    #[arg(long, env = "ROBYN_HOST")]
    pub host: Option<String>,

    /// Port to listen on. [default: app.start(port=...) if called, else 8080]
    #[arg(long, env = "ROBYN_PORT")]
    pub port: Option<u16>,

    /// Least severe log messages shown, for the server and for Python's `logging` (any case).
    /// [default: info; debug with --dev]
    #[arg(long, value_enum, ignore_case = true, env = "ROBYN_LOG_LEVEL")]
    pub log_level: Option<LogLevel>,

    /// Log one line per connection when it ends (client, path, subprotocol, close code,
    /// duration, messages in and out) at info; without it, at debug.
    #[arg(long)]
    pub access_log: bool,

    /// Take the client's address (and ws/wss) from `Forwarded` or `X-Forwarded-For` /
    /// `X-Forwarded-Proto`, when the connecting address is one of --forwarded-allow-ips.
    #[arg(long)]
    pub proxy_headers: bool,

    /// Proxies whose forwarding headers are believed: addresses and networks, comma-separated,
    /// or * for any.
    #[arg(long, value_name = "IPS", env = "FORWARDED_ALLOW_IPS", default_value = "127.0.0.1,::1")]
    pub forwarded_allow_ips: String,

    /// Threads doing network I/O. 0 runs the network side on the Python loop thread itself,
    /// between Python's turns: no thread switch per message (a standby thread takes over while
    /// a callback keeps Python busy). N gives it N threads of its own, beside the loop thread.
    /// [default: 0]
    #[arg(long, value_name = "N", visible_alias = "workers", env = "ROBYN_IO_THREADS")]
    pub io_threads: Option<usize>,

    /// Largest message (and frame) a client may send, in bytes (suffixes K, M, KiB, MiB
    /// accepted); a bigger one is answered with Close 1009.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub max_message_size: usize,

    /// Frames a connection's outbound queue holds. A full queue makes `send_*` wait, and
    /// drops a broadcast or `send_to` recipient with Close 1013 (slow consumer).
    #[arg(long, value_name = "FRAMES", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub send_queue: u32,

    /// Bytes a connection's outbound queue holds (one message more may go in while it is
    /// under): as --send-queue, in bytes. A client this far behind is also no longer read
    /// from (nor its pings answered) until it catches up.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub send_queue_bytes: usize,

    /// Bytes of received messages a connection may hold before its handler takes them; past
    /// it the server stops reading from that client until the handler catches up.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub receive_buffer: usize,

    /// Do not negotiate permessage-deflate compression, even with clients that offer it.
    #[arg(long)]
    pub no_deflate: bool,

    /// Most WebSocket connections open at once; the next handshake gets HTTP 503.
    /// [default: the open-file limit less 64]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Largest HTTP request head (request line and headers together) a client may send, at
    /// least 8KiB; a bigger one gets HTTP 431.
    #[arg(long, value_name = "SIZE", default_value = "16KiB", value_parser = parse_header_size)]
    pub max_header_size: usize,

    /// Most header lines in an HTTP request; more get HTTP 431.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_headers: u16,

    /// Largest HTTP request body a route takes (suffixes as --max-message-size); a bigger one
    /// gets HTTP 413 and the connection is closed.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub max_body_size: usize,

    /// Threads the app's sync HTTP handlers (and sync middlewares) run on, so that they never
    /// hold up the event loop; async handlers run on the loop.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub sync_threads: u16,

    /// Seconds the app gets to answer an HTTP request; past it the client gets HTTP 503 (the
    /// handler itself runs on). 0: wait as long as the handler takes.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub request_timeout: f64,

    /// Seconds of silence after which a server-sent events stream (text/event-stream) gets a
    /// comment line, so that proxies and browsers keep it open; 0: never.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, value_parser = parse_seconds)]
    pub sse_keepalive: f64,

    /// Seconds a new TCP connection gets to send its whole HTTP request head, and a keep-alive
    /// connection to start its next request before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub handshake_timeout: f64,

    /// Serve HTTPS and wss:// with this certificate (PEM: the server's own first, then its
    /// intermediates), read again on SIGHUP.
    #[arg(long, value_name = "PATH", env = "ROBYN_SSL_CERTFILE", requires = "ssl_keyfile")]
    pub ssl_certfile: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, RSA or EC; encrypted PKCS#8 with
    /// --ssl-keyfile-password), read again on SIGHUP.
    #[arg(long, value_name = "PATH", env = "ROBYN_SSL_KEYFILE", requires = "ssl_certfile")]
    pub ssl_keyfile: Option<PathBuf>,

    /// The password of an encrypted --ssl-keyfile.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ROBYN_SSL_KEYFILE_PASSWORD",
        requires = "ssl_keyfile",
        hide_env_values = true
    )]
    pub ssl_keyfile_password: Option<String>,

    /// CA certificates (PEM) that client certificates must come from (with --ssl-cert-reqs).
    #[arg(long, value_name = "PATH", env = "ROBYN_SSL_CA_CERTS", requires = "ssl_certfile")]
    pub ssl_ca_certs: Option<PathBuf>,

    /// Client certificates: not asked for (none, 0), checked when given (optional, 1), or
    /// required (required, 2); uvicorn's numbers.
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = ClientCerts::None, requires = "ssl_certfile")]
    pub ssl_cert_reqs: ClientCerts,

    /// Seconds of silence from a client after which the server pings it; 0 turns keep-alive
    /// pings off.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = parse_seconds)]
    pub ping_interval: f64,

    /// Seconds a pinged client has to answer before it is dropped (Close 1011).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = parse_seconds)]
    pub ping_timeout: f64,

    /// Accept handshakes only from this Origin (repeatable; exact match, e.g.
    /// https://example.com). Others get HTTP 403. Requests without an Origin header (non-browser
    /// clients) are accepted.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Log a warning when one callback keeps the Python event loop busy longer than this,
    /// naming the endpoint and the line it is stuck on; 0 turns it off.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.1, value_parser = parse_seconds)]
    pub slow_callback: f64,

    /// Serve live counts (connections per endpoint, memory) as JSON at this path, e.g.
    /// /__stats. Off unless given.
    #[arg(long, value_name = "PATH")]
    pub stats_path: Option<String>,

    /// Seconds handlers get to finish after SIGINT/SIGTERM before the remaining connections
    /// are closed without waiting for them.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub shutdown_timeout: f64,

    /// Seconds between looks at the memory the allocator keeps after it was freed: once it is
    /// 2 MiB more than its lowest since the last time, it is given back to the system
    /// (malloc_trim), so a peak does not stay with the process. 0 never gives it back.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_seconds)]
    pub memory_trim_interval: f64,

    /// Worker processes, each with its own interpreter, sharing the port (SO_REUSEPORT); a
    /// supervisor restarts one that dies. Broadcasts, rooms and send_to reach the clients of
    /// every process.
    #[arg(long, value_name = "N", env = "ROBYN_PROCESSES", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub processes: u32,

    /// A Redis server (redis://host:port/db) joining this server to others, on any host, that
    /// name the same one: broadcasts, rooms and send_to reach their clients too.
    /// rediss:// connects over TLS; a password goes in the URL (redis://:password@host/db, or
    /// user:password for an ACL user), and is never logged: give it in ROBYN_BROKER rather than
    /// on the command line to keep it out of `ps` too.
    #[arg(long, value_name = "URL", env = "ROBYN_BROKER", hide_env_values = true)]
    pub broker: Option<String>,

    /// CA certificates (PEM) that a rediss:// broker's certificate must come from.
    /// [default: the system's CAs]
    #[arg(long, value_name = "PATH", env = "ROBYN_BROKER_CA", requires = "broker")]
    pub broker_ca: Option<PathBuf>,

    /// Seconds a user whose last connection to an endpoint (or room) closed stays present
    /// there: coming back within them (a page reload, a phone changing networks) is neither a
    /// leave nor a join for `on_presence`. 0 announces a leave at once.
    #[arg(long, value_name = "SECONDS", env = "ROBYN_PRESENCE_GRACE", default_value_t = 5.0, value_parser = parse_seconds)]
    pub presence_grace: f64,

    /// Largest broadcast a handler may make (suffixes K, M, KiB, MiB accepted); a bigger one
    /// raises ValueError in the handler. Between processes and hosts a broadcast travels whole.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_broadcast_size: usize,

    /// Serve /health, /ready and /metrics on this port (at --host) instead of the main port.
    #[arg(long, value_name = "PORT", env = "ROBYN_METRICS_PORT")]
    pub metrics_port: Option<u16>,

    /// Serve /metrics on the main port too. Off by default: it tells anyone who asks the app's
    /// per-route counts and close codes (/health and /ready are on the main port either way).
    #[arg(long, env = "ROBYN_EXPOSE_METRICS", conflicts_with = "metrics_port")]
    pub expose_metrics: bool,

    /// Restart the workers when a file of the app changes (for development): a worker with
    /// the new code starts beside the old one, which hands over once it serves (its
    /// WebSockets get Close 1012, its event streams end); code that does not import leaves
    /// the old one serving. One worker unless --processes says more.
    #[arg(long)]
    pub reload: bool,

    /// Robyn's name for development mode: --reload, and debug logging unless --log-level is
    /// given.
    #[arg(long)]
    pub dev: bool,

    /// Directory to watch for --reload (repeatable). [default: --app-dir, and the directory of
    /// an --app given as a file path]
    #[arg(long = "reload-dir", value_name = "DIR")]
    pub reload_dirs: Vec<PathBuf>,

    /// Glob of the files whose changes restart the workers (repeatable, e.g. '*.html' or
    /// 'templates/*.j2'); *.py always counts. Naming one of the excluded patterns (say
    /// '.env') watches it again.
    #[arg(long = "reload-include", value_name = "GLOB")]
    pub reload_includes: Vec<String>,

    /// Glob of files or directories whose changes are ignored (repeatable), besides hidden
    /// files and folders, __pycache__, venv, node_modules, target, editors' *~ and *.swp.
    #[arg(long = "reload-exclude", value_name = "GLOB")]
    pub reload_excludes: Vec<String>,

    /// (Set by the supervisor of --processes.) The supervisor's bus, which makes this process
    /// one of its workers.
    #[arg(long, value_name = "PATH", hide = true)]
    pub bus: Option<PathBuf>,

    /// (Set by the supervisor of --reload.) The listening socket this worker inherits, by
    /// descriptor number, rather than binding --port itself.
    #[arg(long, value_name = "FD", hide = true)]
    pub listen_fd: Option<i32>,

    /// (Set by the supervisor of --reload.) As --listen-fd, for --metrics-port.
    #[arg(long, value_name = "FD", hide = true)]
    pub metrics_fd: Option<i32>,

    /// (Set by the supervisor of --processes.) This worker's number.
    #[arg(long, value_name = "N", hide = true, default_value_t = 0)]
    pub worker: u32,
}

impl Cli {
    /// Parses a command line (the program's name first), with the app named exactly once:
    /// clap alone cannot tell `--app` given from `ROBYN_APP` set, and only the first is an
    /// error beside the app given on its own.
    pub fn parse_command_line<I, T>(arguments: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(arguments)?;
        let cli = Self::from_arg_matches(&matches).map_err(|error| error.format(&mut command))?;
        if cli.app_argument.is_some() && matches.value_source("app") == Some(ValueSource::CommandLine) {
            return Err(command.error(ErrorKind::ArgumentConflict, "the app is named twice: give `--app APP` or `APP`"));
        }
        if cli.app().is_empty() {
            return Err(command.error(
                ErrorKind::MissingRequiredArgument,
                "no app to serve: name it (`robyn-ws-server app.py`, or `--app pyapp.main`, or ROBYN_APP)",
            ));
        }
        Ok(cli)
    }

    /// The app to serve, given on its own, with `--app` or in `ROBYN_APP`.
    pub fn app(&self) -> &str {
        self.app_argument.as_deref().or(self.app.as_deref()).unwrap_or_default()
    }

    /// What this process is: the supervisor of --processes, one of its workers, or the whole
    /// server alone.
    pub fn role(&self) -> Role<'_> {
        match (&self.bus, self.processes) {
            (Some(bus), _) => Role::Worker { bus, number: self.worker },
            (None, 1) if !self.reloads() => Role::Alone,
            (None, processes) => Role::Supervisor { processes },
        }
    }

    /// Whether the workers restart on a change (`--reload`, or Robyn's `--dev`).
    pub fn reloads(&self) -> bool {
        self.reload || self.dev
    }

    pub fn log_level(&self) -> LogLevel {
        match (self.log_level, self.dev) {
            (Some(level), _) => level,
            (None, true) => LogLevel::Debug,
            (None, false) => LogLevel::Info,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Role<'a> {
    Alone,
    Supervisor { processes: u32 },
    Worker { bus: &'a std::path::Path, number: u32 },
}

/// Whether TLS clients present a certificate of their own (`--ssl-cert-reqs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientCerts {
    /// Not asked for.
    #[value(alias = "0")]
    None,
    /// Asked for and checked against --ssl-ca-certs; a client without one is served.
    #[value(alias = "1")]
    Optional,
    /// A client without a certificate from --ssl-ca-certs is refused during the handshake.
    #[value(alias = "2")]
    Required,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn tracing(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }

    /// The matching level number of Python's `logging`.
    pub fn python(self) -> i32 {
        match self {
            LogLevel::Error => 40,
            LogLevel::Warn => 30,
            LogLevel::Info => 20,
            LogLevel::Debug => 10,
            LogLevel::Trace => 1,
        }
    }
}

/// A duration in seconds, fractions allowed; 0 or more.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        _ => Err(format!("{text:?} is not a number of seconds (0 or more, fractions allowed)")),
    }
}

/// `1048576`, `64K`, `64KiB`, `16M`, `16MiB` (binary multiples either way).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: usize =
        digits.parse().map_err(|_| format!("{text:?} is not a size: use bytes, or a number with K/M/G"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?}: use K, M or G")),
    };
    match number.checked_mul(multiplier) {
        Some(0) | None => Err(format!("{text:?} is not a usable size")),
        Some(size) => Ok(size),
    }
}

/// hyper reads a request head into a buffer of at most this size, and needs 8 KiB at least.
fn parse_header_size(text: &str) -> Result<usize, String> {
    const HYPER_MINIMUM: usize = 8 * 1024;
    match parse_size(text)? {
        size if size < HYPER_MINIMUM => Err(format!("{text:?} is below the least allowed, 8KiB")),
        size => Ok(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2 gb"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(parse_header_size("8K"), Ok(8 << 10));
        assert!(parse_header_size("4K").is_err());
    }

    #[test]
    fn seconds_parse_as_non_negative_numbers() {
        assert_eq!(parse_seconds("0.25"), Ok(0.25));
        assert_eq!(parse_seconds("20"), Ok(20.0));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
    }

    #[test]
    fn processes_make_a_supervisor_and_the_bus_a_worker() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["robyn-ws-server", "--app", "m"], args].concat()).unwrap();
        assert_eq!(parse(&[]).role(), Role::Alone);
        assert_eq!(parse(&["--processes", "4"]).role(), Role::Supervisor { processes: 4 });
        let worker = parse(&["--processes", "4", "--port", "0", "--bus", "/tmp/b", "--worker", "2", "--port", "8123"]);
        assert_eq!(worker.role(), Role::Worker { bus: std::path::Path::new("/tmp/b"), number: 2 });
        assert_eq!(worker.port, Some(8123), "the supervisor's --port wins over the user's");
        assert!(Cli::try_parse_from(["robyn-ws-server", "--app", "m", "--processes", "0"]).is_err());
    }

    #[test]
    fn reload_needs_a_supervisor_even_for_one_process() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["robyn-ws-server", "--app", "m"], args].concat()).unwrap();
        assert_eq!(parse(&["--reload"]).role(), Role::Supervisor { processes: 1 });
        assert_eq!(parse(&["--dev", "--processes", "2"]).role(), Role::Supervisor { processes: 2 });
        assert!(matches!(parse(&["--reload", "--bus", "/tmp/b"]).role(), Role::Worker { .. }));
    }

    #[test]
    fn dev_is_reload_with_debug_logging_unless_told_otherwise() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["robyn-ws-server", "--app", "m"], args].concat()).unwrap();
        assert!(matches!(parse(&[]).log_level(), LogLevel::Info));
        assert!(!parse(&[]).reloads());
        let dev = parse(&["--dev"]);
        assert!(dev.reloads());
        assert!(matches!(dev.log_level(), LogLevel::Debug));
        assert!(matches!(parse(&["--dev", "--log-level", "warn"]).log_level(), LogLevel::Warn));
        assert!(matches!(parse(&["--reload"]).log_level(), LogLevel::Info));
    }

    #[test]
    fn the_app_is_named_with_or_without_the_flag() {
        let app = |args: &[&str]| Cli::parse_command_line(args).map(|cli| cli.app().to_owned());
        assert_eq!(app(&["robyn-ws-server", "--app", "chat:app"]).unwrap(), "chat:app");
        assert_eq!(app(&["robyn-ws-server", "app.py", "--port", "9000"]).unwrap(), "app.py");
        assert_eq!(app(&["robyn-ws-server", "--port", "9000", "sub/app.py:api"]).unwrap(), "sub/app.py:api");
        assert_eq!(app(&["robyn-ws-server", "--app", "a.py", "b.py"]).unwrap_err().kind(), ErrorKind::ArgumentConflict);
        assert_eq!(app(&["robyn-ws-server", "--port", "9000"]).unwrap_err().kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn the_flags_are_consistent() {
        Cli::command().debug_assert();
    }
}
