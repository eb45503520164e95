//! `cargo xtask run [ARGS...]`: the README's run command. Builds the release server and replaces
//! this process with `target/release/sluice serve ARGS...`. No setup step, so it stays quick.

use crate::proc;
use std::process::Command;

/// Builds, then execs the server with `args` passed through.
pub fn run(args: &[String]) -> Result<(), String> {
    crate::test::build_release_server()?;
    build_web_package()?;
    let bin = proc::root().join("target/release/sluice");
    let mut cmd = Command::new(&bin);
    cmd.arg("serve").args(args);
    println!("$ {}", proc::describe(&cmd));
    exec(cmd)
}

/// HOOK(sluice-browser): build the wasm package served by the page under `web/pkg/` here once
/// `crates/sluice-browser` exists (`cargo build --release --target wasm32-unknown-unknown` +
/// `wasm-bindgen --target web`). Does nothing yet.
fn build_web_package() -> Result<(), String> {
    Ok(())
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
