//! Starting CPython in the standalone binary: from the virtualenv the user runs from, or the
//! Python the binary was built against, with signal handling left to the server. The Python
//! package (`robyn_ws_server`) runs inside a Python that is already running, and has none of
//! this.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use pyo3::ffi;

/// The Python version this binary embeds, as `3.11`.
const EMBEDDED: &str = env!("PYHOST_PYTHON_VERSION");

/// Which `python` the embedded interpreter takes its paths from: the virtualenv the user runs
/// from (so its packages are importable, through its `pyvenv.cfg`, as under its own
/// `python`), else the one this binary was built against. Without it CPython would guess from
/// whatever `python3` is first on PATH.
fn program_name() -> Option<PathBuf> {
    let built_with = option_env!("PYHOST_PYTHON").map(PathBuf::from).filter(|python| python.exists());
    let venv = match std::env::var_os("VIRTUAL_ENV").filter(|venv| !venv.is_empty()) {
        Some(venv) => Some((PathBuf::from(venv), "VIRTUAL_ENV")),
        None => virtualenv_on_path().map(|venv| (venv, "PATH")),
    };
    let Some((venv, named_by)) = venv else { return built_with };
    match virtualenv_version(&venv) {
        Some(version) if version == EMBEDDED && venv.join("bin").join("python").exists() => {
            return Some(venv.join("bin").join("python"));
        }
        Some(version) if version != EMBEDDED => tracing::warn!(
            "the server embeds Python {EMBEDDED}; this virtualenv ({}, from {named_by}) is Python {version}: its \
             packages are not used. Make it with python{EMBEDDED} -m venv, or use a server built with Python {version}",
            venv.display()
        ),
        _ => tracing::warn!(
            "ignoring the virtualenv {} (from {named_by}): it has no bin/python or no pyvenv.cfg saying its version",
            venv.display()
        ),
    }
    built_with
}

/// The virtualenv whose `bin` is the first folder on PATH with a `python` in it, if that folder
/// is a virtualenv's: the usual container layout puts one there without activating it.
fn virtualenv_on_path() -> Option<PathBuf> {
    let folder = std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|folder| ["python", "python3"].iter().any(|name| folder.join(name).is_file()))?;
    let venv = folder.parent()?;
    venv.join("pyvenv.cfg").is_file().then(|| venv.to_path_buf())
}

/// `3.12` from a virtualenv's `pyvenv.cfg` (`version = 3.12.1`, or uv's `version_info`).
fn virtualenv_version(venv: &Path) -> Option<String> {
    let config = std::fs::read_to_string(venv.join("pyvenv.cfg")).ok()?;
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if !matches!(key.trim(), "version" | "version_info") {
            return None;
        }
        let mut parts = value.trim().split('.');
        Some(format!("{}.{}", parts.next()?, parts.next()?))
    })
}

/// Starts CPython, leaving signal handling to the server, then releases the GIL so the loop
/// thread can take it. Fails with what to do about it.
#[allow(unsafe_code, reason = "CPython's PyConfig initialization API has no safe PyO3 wrapper")]
pub fn initialize() -> Result<(), String> {
    // SAFETY: the PyConfig calls follow CPython's documented initialization sequence, on one
    // thread, before anything else touches the interpreter; the config is cleared after use.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Ok(());
        }
        let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let mut status = None;
        if let Some(program) = program_name()
            && let Ok(program) = CString::new(program.as_os_str().as_encoded_bytes())
        {
            let set = ffi::PyConfig_SetBytesString(&mut config, &mut config.program_name, program.as_ptr());
            if ffi::PyStatus_Exception(set) != 0 {
                status = Some(set);
            }
        }
        let status = status.unwrap_or_else(|| ffi::Py_InitializeFromConfig(&config));
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            let reason = if status.err_msg.is_null() {
                "unknown error".into()
            } else {
                CStr::from_ptr(status.err_msg).to_string_lossy()
            };
            return Err(format!(
                "cannot start Python: {reason} (set PYTHONHOME to the Python 3 installation this server was built with)"
            ));
        }
        ffi::PyEval_SaveThread();
    }
    Ok(())
}
