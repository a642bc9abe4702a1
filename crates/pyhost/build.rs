//! Tells dependents where the linked libpython lives (read as DEP_PYHOST_LIB_DIR).

fn main() {
    if let Some(lib_dir) = pyo3_build_config::get().lib_dir() {
        println!("cargo::metadata=lib_dir={lib_dir}");
    }
}
