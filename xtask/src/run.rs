//! `cargo xtask run [ARGS...]`: the README's run command. Builds the release server and replaces
//! this process with `target/release/sluice serve ARGS...`. No setup step, so it stays quick.

use crate::proc;
use std::process::Command;

/// Builds, then execs the server with `args` passed through.
pub fn run(args: &[String]) -> Result<(), String> {
    // `cargo xtask run -- --listen ...`: the separator is for us, not for the server.
    let args = args.strip_prefix(&["--".to_string()]).unwrap_or(args);
    crate::test::build_release_server()?;
    build_web_package()?;
    let bin = proc::root().join("target/release/sluice");
    let mut cmd = Command::new(&bin);
    cmd.arg("serve");
    // The upload page and its wasm package, unless the caller chose another directory (first, so
    // that it stays a flag whatever follows).
    if !args.iter().any(|a| a == "--web-dir" || a.starts_with("--web-dir=")) {
        cmd.arg("--web-dir").arg(proc::root().join("web"));
    }
    cmd.args(args);
    println!("$ {}", proc::describe(&cmd));
    exec(cmd)
}

/// Builds the release wasm package into `web/pkg/`, where the page (`web/index.html`, served with
/// `--web-dir web`) imports it: `cargo build --release --target wasm32-unknown-unknown`, then
/// `wasm-bindgen --target web`. Never wasm-opt: Debian's binaryen silently breaks the module.
/// Both steps are quick when nothing changed (cargo is incremental; wasm-bindgen takes ~1 s).
pub fn build_web_package() -> Result<(), String> {
    let root = proc::root();
    if proc::probe(proc::command("wasm-bindgen").arg("--version")).is_none() {
        return Err("wasm-bindgen is not installed; run `cargo xtask setup` (or \
                    `cargo install wasm-bindgen-cli --version 0.2.130`)"
            .into());
    }
    const WASM: &str = "wasm32-unknown-unknown";
    proc::run(proc::cargo().args(["build", "--release", "-p", "sluice-browser", "--target", WASM]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    let wasm = target.join(WASM).join("release/sluice_browser.wasm");
    proc::run(proc::command("wasm-bindgen").args(["--target", "web", "--out-dir"]).arg(root.join("web/pkg")).arg(&wasm))
}

#[cfg(unix)]
fn exec(mut cmd: Command) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(format!("cannot exec `{}`: {err}", proc::describe(&cmd)))
}

#[cfg(not(unix))]
fn exec(mut cmd: Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot start `{}`: {e}", proc::describe(&cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("server exited with {status}"))
    }
}
