//! The loop thread: the one thread that holds the GIL while the server runs. It runs the
//! startup handlers, then the asyncio loop that every connection's handler lives on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyTuple};

use crate::bridge::{Bridge, Hub};
use crate::interpreter::{LoadedApp, StartupError};
use crate::native::{self, Dispatcher, Driver, format_exception, log_python_error};

/// How long a failed start-up waits for the loop thread to let go of the interpreter.
const WIND_DOWN: Duration = Duration::from_secs(5);

/// The running loop thread.
pub struct PythonLoop {
    finished: mpsc::Receiver<()>,
}

/// Where the network side runs.
pub enum Network {
    /// On tokio threads of its own; the loop thread is woken through the bridge's eventfd.
    OwnThreads,
    /// On the loop thread, between Python's turns, on this current-thread runtime (with a
    /// standby thread for when Python keeps the loop busy).
    LoopThread(Arc<tokio::runtime::Runtime>),
}

impl LoadedApp {
    /// Starts the loop thread and returns once the startup handlers have run and the loop is
    /// serving events from `bridge`. With `slow_callback`, a watchdog reports any callback
    /// that keeps the loop busy longer than that.
    pub fn start(
        self,
        bridge: Arc<Bridge>,
        hub: Arc<dyn Hub>,
        network: Network,
        slow_callback: Option<Duration>,
    ) -> Result<PythonLoop, StartupError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), StartupError>>(1);
        let (finished_tx, finished) = mpsc::sync_channel(1);
        let runtime = self.runtime;
        let spawned = thread::Builder::new().name("python-loop".into()).spawn(move || {
            Python::attach(|py| {
                let stop = Arc::new(AtomicBool::new(false));
                if let Some(threshold) = slow_callback {
                    let (runtime, stop) = (runtime.clone_ref(py), stop.clone());
                    let _ = thread::Builder::new()
                        .name("loop-watchdog".into())
                        .spawn(move || watch(&runtime, threshold, &stop));
                }
                run(py, &runtime, bridge, hub, network, &ready_tx);
                stop.store(true, Ordering::Release);
            });
            let _ = finished_tx.send(());
        });
        if let Err(err) = spawned {
            return Err(StartupError { details: None, message: format!("cannot start the Python thread: {err}") });
        }
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PythonLoop { finished }),
            Ok(Err(err)) => {
                // The loop thread is still winding down; inside the user's Python (the pip
                // package) the interpreter is finalised once the error is reported, and a
                // thread still attached to it then would crash the process.
                let _ = finished.recv_timeout(WIND_DOWN);
                Err(err)
            }
            Err(_) => Err(StartupError { details: None, message: "the Python thread ended during start-up".into() }),
        }
    }
}

fn run(
    py: Python<'_>,
    runtime: &Py<PyAny>,
    bridge: Arc<Bridge>,
    hub: Arc<dyn Hub>,
    network: Network,
    ready: &mpsc::SyncSender<Result<(), StartupError>>,
) {
    let startup_ready = ready.clone();
    let report = move |args: &Bound<'_, PyTuple>, _: Option<&Bound<'_, pyo3::types::PyDict>>| -> PyResult<()> {
        let failure: Option<(String, String)> = args.get_item(0)?.extract()?;
        let outcome = match failure {
            None => Ok(()),
            Some((traceback, message)) => Err(StartupError { details: Some(traceback), message }),
        };
        let _ = startup_ready.send(outcome);
        Ok(())
    };
    let outcome = PyCFunction::new_closure(py, None, None, report).and_then(|report| {
        let dispatcher = Py::new(py, Dispatcher::new(bridge.clone(), hub))?;
        let driver = match network {
            Network::OwnThreads => None,
            Network::LoopThread(tokio) => Some(Py::new(py, Driver::new(tokio, bridge, dispatcher.clone_ref(py))?)?),
        };
        runtime.call_method1(py, "run", (dispatcher, report, driver))
    });
    if let Err(err) = outcome {
        // Only reaches anyone if start-up was still waiting; otherwise it is logged.
        let failure =
            StartupError { details: Some(format_exception(py, &err)), message: "the asyncio loop failed".into() };
        if ready.try_send(Err(failure)).is_err() {
            log_python_error(py, "the asyncio loop failed", &err);
        }
    }
}

/// Checks a few times per `threshold` whether the loop has been busy that long; if so, has the
/// runtime say where (once per busy stretch). Needs the GIL only then.
fn watch(runtime: &Py<PyAny>, threshold: Duration, stop: &AtomicBool) {
    let period = (threshold / 2).max(Duration::from_millis(10));
    let mut reported = 0;
    while !stop.load(Ordering::Acquire) {
        thread::sleep(period);
        let Some((busy_for, stretch)) = native::busy() else { continue };
        if busy_for < threshold || stretch == reported {
            continue;
        }
        reported = stretch;
        Python::attach(|py| {
            // The loop may have gone back to waiting while this thread waited for the GIL:
            // its stack would show the wait, not what kept it busy.
            if native::busy().is_none_or(|(_, now)| now != stretch) {
                return;
            }
            if let Err(err) = runtime.call_method1(py, "report_blocked", (busy_for.as_secs_f64(),)) {
                log_python_error(py, "reporting a blocked event loop failed", &err);
            }
        });
    }
}

impl PythonLoop {
    /// Waits for the loop thread to finish (after `Event::Stop`); false if it did not within
    /// `timeout` (a handler blocking the loop, say).
    pub fn wait(&self, timeout: Duration) -> bool {
        self.finished.recv_timeout(timeout).is_ok()
    }
}
