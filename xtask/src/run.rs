//! `cargo xtask run [ARGS...]`: the README's run command. Builds the release server and replaces
//! this process with `target/release/sluice serve ARGS...`. No setup step, so it stays quick.

use crate::proc;
use std::process::Command;

/// Builds, then execs the server with `args` passed through.
pub fn run(args: &[String]) -> Result<(), String> {
    // `cargo xtask run -- --listen ...`: the separator is for us, not for the server.
    let args = args.strip_prefix(&["--".to_string()]).unwrap_or(args);
    // Builds web/pkg first: the server embeds the page.
    crate::test::build_release_server()?;
    let bin = proc::root().join("target/release/sluice");
    let mut cmd = Command::new(&bin);
    cmd.arg("serve");
    cmd.args(args);
    println!("$ {}", proc::describe(&cmd));
    exec(cmd)
}

/// Builds the release wasm package into `web/pkg/`, where the page imports it and the server's
/// build embeds it (see `browser::build_package`: wasm-pack, wasm-opt from npm's binaryen).
/// Quick when nothing changed (cargo is incremental; wasm-bindgen and wasm-opt take seconds).
pub fn build_web_package() -> Result<(), String> {
    crate::browser::build_package(&proc::root().join("web/pkg"))
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
