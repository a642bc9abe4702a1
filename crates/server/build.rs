//! Lets the binary find the libpython it was linked against without LD_LIBRARY_PATH (a
//! pyenv or virtualenv Python keeps it outside the system's library path).

fn main() {
    if let Ok(lib_dir) = std::env::var("DEP_PYHOST_LIB_DIR") {
        println!("cargo::rustc-link-arg-bins=-Wl,-rpath,{lib_dir}");
    }
}
