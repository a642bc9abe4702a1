//! Starting CPython inside the server and importing the user's app into it.

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

use crate::locks::lock;
use crate::native::{self, format_exception};

/// The embedded `robyn` package: module name and source, compiled into the binary so that
/// `import robyn` always means this server's package, whatever else is installed.
const PACKAGE: &[(&str, &str)] = &[
    ("robyn", include_str!("../python/robyn_ws_server/api/robyn/__init__.py")),
    ("robyn._app", include_str!("../python/robyn_ws_server/api/robyn/_app.py")),
    ("robyn._placement", include_str!("../python/robyn_ws_server/api/robyn/_placement.py")),
    ("robyn._chain", include_str!("../python/robyn_ws_server/api/robyn/_chain.py")),
    ("robyn._cors", include_str!("../python/robyn_ws_server/api/robyn/_cors.py")),
    ("robyn._endpoint", include_str!("../python/robyn_ws_server/api/robyn/_endpoint.py")),
    ("robyn._headers", include_str!("../python/robyn_ws_server/api/robyn/_headers.py")),
    ("robyn._history", include_str!("../python/robyn_ws_server/api/robyn/_history.py")),
    ("robyn._http_params", include_str!("../python/robyn_ws_server/api/robyn/_http_params.py")),
    ("robyn._http_route", include_str!("../python/robyn_ws_server/api/robyn/_http_route.py")),
    ("robyn._http_routing", include_str!("../python/robyn_ws_server/api/robyn/_http_routing.py")),
    ("robyn._http_service", include_str!("../python/robyn_ws_server/api/robyn/_http_service.py")),
    ("robyn._loader", include_str!("../python/robyn_ws_server/api/robyn/_loader.py")),
    ("robyn._middleware", include_str!("../python/robyn_ws_server/api/robyn/_middleware.py")),
    ("robyn._openapi_docs", include_str!("../python/robyn_ws_server/api/robyn/_openapi_docs.py")),
    ("robyn._openapi_document", include_str!("../python/robyn_ws_server/api/robyn/_openapi_document.py")),
    ("robyn._openapi_schema", include_str!("../python/robyn_ws_server/api/robyn/_openapi_schema.py")),
    ("robyn._params", include_str!("../python/robyn_ws_server/api/robyn/_params.py")),
    ("robyn._pipeline", include_str!("../python/robyn_ws_server/api/robyn/_pipeline.py")),
    ("robyn._query", include_str!("../python/robyn_ws_server/api/robyn/_query.py")),
    ("robyn._request", include_str!("../python/robyn_ws_server/api/robyn/_request.py")),
    ("robyn._response", include_str!("../python/robyn_ws_server/api/robyn/_response.py")),
    ("robyn._returns", include_str!("../python/robyn_ws_server/api/robyn/_returns.py")),
    ("robyn._runtime", include_str!("../python/robyn_ws_server/api/robyn/_runtime.py")),
    ("robyn._streaming", include_str!("../python/robyn_ws_server/api/robyn/_streaming.py")),
    ("robyn._tracebacks", include_str!("../python/robyn_ws_server/api/robyn/_tracebacks.py")),
    ("robyn._websocket", include_str!("../python/robyn_ws_server/api/robyn/_websocket.py")),
    ("robyn._workers", include_str!("../python/robyn_ws_server/api/robyn/_workers.py")),
    ("robyn.authentication", include_str!("../python/robyn_ws_server/api/robyn/authentication.py")),
    ("robyn.exceptions", include_str!("../python/robyn_ws_server/api/robyn/exceptions.py")),
    ("robyn.jsonify", include_str!("../python/robyn_ws_server/api/robyn/jsonify.py")),
    ("robyn.openapi", include_str!("../python/robyn_ws_server/api/robyn/openapi.py")),
    ("robyn.responses", include_str!("../python/robyn_ws_server/api/robyn/responses.py")),
    ("robyn.robyn", include_str!("../python/robyn_ws_server/api/robyn/robyn.py")),
    ("robyn.session", include_str!("../python/robyn_ws_server/api/robyn/session.py")),
    ("robyn.status_codes", include_str!("../python/robyn_ws_server/api/robyn/status_codes.py")),
    ("robyn.templating", include_str!("../python/robyn_ws_server/api/robyn/templating.py")),
    ("robyn.types", include_str!("../python/robyn_ws_server/api/robyn/types.py")),
];

/// For whoever works on the `robyn` package: the folder holding it (`.../api`, with `robyn/`
/// inside), read at start-up in place of the embedded copy, so that a change to its Python is
/// tried without rebuilding the server.
const SOURCE_DIR_VARIABLE: &str = "ROBYN_WS_SERVER_API_DIR";

/// Every `robyn/*.py` under `dir`, named as `PACKAGE` names them.
fn package_from(dir: &std::path::Path) -> PyResult<Vec<(String, String)>> {
    let folder = dir.join("robyn");
    let unreadable = |err: std::io::Error| {
        PyRuntimeError::new_err(format!(
            "{SOURCE_DIR_VARIABLE}={}: cannot read the robyn package there ({err}); unset it to use the embedded one",
            dir.display()
        ))
    };
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(&folder).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else { continue };
        if path.extension().is_none_or(|ext| ext != "py") {
            continue;
        }
        let name = if stem == "__init__" { "robyn".to_owned() } else { format!("robyn.{stem}") };
        modules.push((name, std::fs::read_to_string(&path).map_err(unreadable)?));
    }
    Ok(modules)
}

const BOOTSTRAP: &str = include_str!("../python/bootstrap.py");

/// What to load, and how.
pub struct Settings {
    /// `module`, `module:attr`, `path/to/app.py` or `path/to/app.py:attr`.
    pub target: String,
    /// Where the module is looked up (put first on `sys.path`).
    pub app_dir: PathBuf,
    /// Python's level number (`logging.INFO` is 20) below which Python log records are
    /// dropped before they are formatted.
    pub log_level: i32,
}

/// Start-up cannot go on; printed as the details (a traceback, if any) then the message.
#[derive(Debug)]
pub struct StartupError {
    pub details: Option<String>,
    pub message: String,
}

impl StartupError {
    fn internal(py: Python<'_>, doing: &str, err: &PyErr) -> Self {
        Self { details: Some(format_exception(py, err)), message: format!("{doing} failed inside the server") }
    }
}

/// One `@app.websocket(...)` route, as the network side serves it.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// Robyn's pattern: `/chat`, `/user/:id`, `/files/*rest`.
    pub path: String,
    /// The subprotocols it speaks, in its order of preference.
    pub subprotocols: Vec<String>,
    /// It has `on_connect`, which runs before the handshake is answered.
    pub decides: bool,
    /// Its history (`history=N`, `history_ttl=S`): how many broadcasts each room keeps, and
    /// for how many seconds at most.
    pub history: Option<(usize, Option<f64>)>,
}

/// One HTTP route of the app (`@app.get(...)` and the like).
#[derive(Debug, Clone)]
pub struct HttpRouteSpec {
    /// Upper-case: `GET`, `POST`...
    pub method: String,
    /// Robyn's pattern, prefixes of its routers included.
    pub path: String,
    /// `const=True`: the first answer is kept and served from then on without Python.
    pub constant: bool,
}

/// A folder the app serves files from (`app.serve_directory`).
#[derive(Debug, Clone)]
pub struct StaticMount {
    pub route: String,
    pub directory: PathBuf,
    /// Served for the mount's own path (and for folders under it).
    pub index_file: Option<String>,
    /// A folder without an index file gets a listing.
    pub listing: bool,
}

/// The HTTP side of the app, as the network side serves it.
#[derive(Debug, Clone, Default)]
pub struct HttpApp {
    /// An HTTP call's route index points into this list.
    pub routes: Vec<HttpRouteSpec>,
    pub static_mounts: Vec<StaticMount>,
    /// Added to every HTTP response (`app.set_response_header`), but on `header_exclusions`.
    pub response_headers: Vec<(String, String)>,
    pub header_exclusions: Vec<String>,
    /// The app's global middlewares must see requests no route matched (their 404).
    pub not_found_in_python: bool,
    /// The origins `ALLOW_CORS` allows (`*`: any); empty without it.
    pub cors_origins: Vec<String>,
}

/// The user's app, imported, with what the network side needs to know about it.
pub struct LoadedApp {
    /// The WebSocket routes; an event's endpoint index points into this list.
    pub endpoints: Vec<EndpointSpec>,
    pub http: HttpApp,
    /// Where `app.start(host=..., port=...)` asked to listen, if it was called.
    pub start_host: Option<String>,
    pub start_port: Option<u16>,
    /// The `startup_handler(once=...)` tasks; a lease event's task index points into this list.
    pub once_tasks: Vec<OnceTask>,
    pub(crate) runtime: Py<PyAny>,
}

/// A startup handler that runs in one process only: of the host, or of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceTask {
    /// The handler's module and name: the same in every process of the app.
    pub name: String,
    pub scope: OnceScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnceScope {
    Host,
    Cluster,
}

/// Where this process stands among the server's processes (`app.worker`).
#[derive(Debug, Clone)]
pub struct WorkerPlace {
    pub index: u32,
    pub count: u32,
    /// This process's id among the cluster's nodes.
    pub node: String,
}

/// Starts the interpreter and runs the app's module as `python app.py` would; `serve` serves
/// the app (when the module calls `app.start()`, or once it has run) and returns after
/// shutdown. Python tracebacks end up in the error.
pub fn run<F>(settings: &Settings, serve: F) -> Result<(), StartupError>
where
    F: FnOnce(LoadedApp) -> Result<(), StartupError> + Send + 'static,
{
    initialize()?;
    Python::attach(|py| {
        install_package(py, settings.log_level)
            .map_err(|err| StartupError::internal(py, "installing the robyn package", &err))?;
        let app_dir = settings.app_dir.to_string_lossy().into_owned();
        let loader =
            py.import("robyn._loader").map_err(|err| StartupError::internal(py, "importing robyn._loader", &err))?;
        let failed = Arc::new(Mutex::new(None));
        let serving = serving(py, &loader, serve, failed.clone())
            .map_err(|err| StartupError::internal(py, "preparing to serve", &err))?;
        match loader.call_method1("run", (settings.target.as_str(), app_dir, serving)) {
            Ok(_) => Ok(()),
            Err(err) => Err(lock(&failed).take().unwrap_or_else(|| load_error(py, &loader, &err))),
        }
    })
}

/// The `serve(runtime)` the loader calls: serves the app with the GIL released, and turns a
/// failure into `ServeFailed` (the error itself goes to `failed`).
fn serving<'py, F>(
    py: Python<'py>,
    loader: &Bound<'py, PyModule>,
    serve: F,
    failed: Arc<Mutex<Option<StartupError>>>,
) -> PyResult<Bound<'py, PyCFunction>>
where
    F: FnOnce(LoadedApp) -> Result<(), StartupError> + Send + 'static,
{
    let serve = Mutex::new(Some(serve));
    let serve_failed = loader.getattr("ServeFailed")?.unbind();
    PyCFunction::new_closure(py, None, None, move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, PyDict>>| {
        let py = args.py();
        let app = describe(&args.get_item(0)?)?;
        let serve = lock(&serve).take().ok_or_else(|| PyRuntimeError::new_err("the app is served once"))?;
        leave_sigint_to_the_server(py)?;
        match py.detach(move || serve(app)) {
            Ok(()) => Ok(()),
            Err(error) => {
                *lock(&failed) = Some(error);
                Err(PyErr::from_value(serve_failed.bind(py).call0()?))
            }
        }
    })
}

/// Importing `signal` (asyncio does) makes CPython take over SIGINT when it finds it at its
/// default, and the server's own handler, installed later, passes each signal on to the one
/// it found: the interrupt would surface as a `KeyboardInterrupt` once serving returned, and
/// turn a clean shutdown into a failure. While serving, SIGINT is the server's to handle.
fn leave_sigint_to_the_server(py: Python<'_>) -> PyResult<()> {
    let signal = py.import("signal")?;
    let sigint = signal.getattr("SIGINT")?;
    if signal.call_method1("getsignal", (&sigint,))?.is(&signal.getattr("default_int_handler")?) {
        signal.call_method1("signal", (sigint, signal.getattr("SIG_DFL")?))?;
    }
    Ok(())
}

/// Python is already running when the server is a module inside it (the `robyn_ws_server`
/// package); the standalone binary starts it itself (the `embed` feature).
#[cfg(not(feature = "embed"))]
fn initialize() -> Result<(), StartupError> {
    if Python::try_attach(|_| ()).is_some() {
        return Ok(());
    }
    Err(StartupError {
        details: None,
        message: "this build of the server runs inside Python (python -m robyn_ws_server): Python is not running"
            .into(),
    })
}

/// The standalone binary starts CPython itself.
#[cfg(feature = "embed")]
fn initialize() -> Result<(), StartupError> {
    crate::embedding::initialize().map_err(|message| StartupError { details: None, message })
}

fn install_package(py: Python<'_>, log_level: i32) -> PyResult<()> {
    let bootstrap =
        PyModule::from_code(py, &CString::new(BOOTSTRAP)?, c"robyn-ws-server/bootstrap.py", c"_robyn_ws_bootstrap")?;
    let sources = PyDict::new(py);
    match std::env::var_os(SOURCE_DIR_VARIABLE).filter(|dir| !dir.is_empty()) {
        Some(dir) => {
            for (name, source) in package_from(std::path::Path::new(&dir))? {
                sources.set_item(name, source)?;
            }
        }
        None => {
            for (name, source) in PACKAGE {
                sources.set_item(name, source)?;
            }
        }
    }
    let native = native::module(py)?;
    let emit = native.getattr("emit")?;
    bootstrap.call_method1("install", (sources, native))?;
    py.import("robyn._runtime")?.call_method1("install_log_forwarding", (emit, log_level))?;
    Ok(())
}

fn load_error(py: Python<'_>, loader: &Bound<'_, PyModule>, err: &PyErr) -> StartupError {
    let is_load_error =
        loader.getattr("AppLoadError").is_ok_and(|class| err.value(py).is_instance(&class).unwrap_or(false));
    if !is_load_error {
        return StartupError::internal(py, "loading the app", err);
    }
    let value = err.value(py);
    StartupError {
        details: value.getattr("details").and_then(|d| d.extract()).unwrap_or(None),
        message: value.str().map(|s| s.to_string()).unwrap_or_default(),
    }
}

fn describe(runtime: &Bound<'_, PyAny>) -> PyResult<LoadedApp> {
    let app = runtime.getattr("app")?;
    type Route = (String, Vec<String>, bool, usize, Option<f64>);
    let endpoints: Vec<Route> = runtime.call_method0("routes")?.extract()?;
    Ok(LoadedApp {
        endpoints: endpoints
            .into_iter()
            .map(|(path, subprotocols, decides, kept, span)| EndpointSpec {
                path,
                subprotocols,
                decides,
                history: (kept > 0).then_some((kept, span)),
            })
            .collect(),
        http: describe_http(runtime)?,
        start_host: app.getattr("start_host")?.extract()?,
        start_port: app.getattr("start_port")?.extract()?,
        once_tasks: once_tasks(runtime)?,
        runtime: runtime.clone().unbind(),
    })
}

fn once_tasks(runtime: &Bound<'_, PyAny>) -> PyResult<Vec<OnceTask>> {
    let specs: Vec<(String, String)> = runtime.call_method0("once_handlers")?.extract()?;
    Ok(specs
        .into_iter()
        .map(|(name, scope)| OnceTask {
            name,
            // The Python side accepts these two only.
            scope: if scope == "cluster" { OnceScope::Cluster } else { OnceScope::Host },
        })
        .collect())
}

fn describe_http(runtime: &Bound<'_, PyAny>) -> PyResult<HttpApp> {
    let routes: Vec<(String, String, bool)> = runtime.call_method0("http_routes")?.extract()?;
    let mounts: Vec<(String, PathBuf, Option<String>, bool)> = runtime.call_method0("static_mounts")?.extract()?;
    Ok(HttpApp {
        routes: routes.into_iter().map(|(method, path, constant)| HttpRouteSpec { method, path, constant }).collect(),
        static_mounts: mounts
            .into_iter()
            .map(|(route, directory, index_file, listing)| StaticMount { route, directory, index_file, listing })
            .collect(),
        response_headers: runtime.call_method0("global_response_headers")?.extract()?,
        header_exclusions: runtime.call_method0("response_header_exclusions")?.extract()?,
        not_found_in_python: runtime.call_method0("http_not_found_in_python")?.extract()?,
        cors_origins: runtime.call_method0("cors_origins")?.extract()?,
    })
}

impl LoadedApp {
    /// Tells the app where this process stands (`app.worker`), before `start`.
    pub fn set_worker(&self, place: &WorkerPlace) -> Result<(), StartupError> {
        Python::attach(|py| {
            self.runtime
                .call_method1(py, "set_worker", (place.index, place.count, place.node.as_str()))
                .map(drop)
                .map_err(|err| StartupError::internal(py, "telling the app its worker", &err))
        })
    }

    /// Sizes the thread pool sync HTTP handlers run on (before `start`).
    pub fn set_sync_workers(&self, workers: usize) -> Result<(), StartupError> {
        Python::attach(|py| {
            self.runtime
                .call_method1(py, "set_sync_workers", (workers,))
                .map(drop)
                .map_err(|err| StartupError::internal(py, "sizing the sync handlers' thread pool", &err))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A module added to `python/robyn_ws_server/api/robyn` but not to `PACKAGE` would import fine from a source
    /// checkout and fail with ModuleNotFoundError inside the server.
    #[test]
    fn every_module_of_the_package_is_embedded() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/robyn_ws_server/api/robyn");
        let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
            .expect("the package folder")
            .map(|entry| entry.expect("a folder entry").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "py"))
            .map(|path| match path.file_stem().and_then(|stem| stem.to_str()).expect("a UTF-8 name") {
                "__init__" => "robyn".to_owned(),
                stem => format!("robyn.{stem}"),
            })
            .collect();
        let mut embedded: Vec<String> = PACKAGE.iter().map(|(name, _)| (*name).to_owned()).collect();
        on_disk.sort();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "PACKAGE in interpreter.rs must list every .py file of python/robyn_ws_server/api/robyn"
        );
    }
}
