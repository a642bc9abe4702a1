//! Records which Python this crate links against: its executable (compiled in as
//! PYHOST_PYTHON, so the embedded interpreter finds its standard library wherever the binary
//! is run from) and its library directory (published as DEP_PYHOST_LIB_DIR for the server
//! binary's rpath).

fn main() {
    let config = pyo3_build_config::get();
    let version = config.version();
    println!("cargo::rustc-env=PYHOST_PYTHON_VERSION={}.{}", version.major, version.minor);
    if let Some(executable) = config.executable() {
        println!("cargo::rustc-env=PYHOST_PYTHON={executable}");
    }
    if let Some(lib_dir) = config.lib_dir() {
        println!("cargo::metadata=lib_dir={lib_dir}");
    }
}
