//! Build script: embeds the directory of the libpython that pyo3 links as an rpath, so the binary
//! starts without LD_LIBRARY_PATH when Python lives outside the loader's default paths.
fn main() {
    let config = pyo3_build_config::get();
    if let Some(lib_dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    }
    if let Some(executable) = config.executable() {
        println!("cargo:rustc-env=RGUNICORN_BUILD_PYTHON={executable}");
    }
    println!(
        "cargo:rustc-env=RGUNICORN_BUILD_PYTHON_VERSION={}",
        config.version()
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
