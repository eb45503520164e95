//! `cargo xtask ...`: the project's automation, std-only so it compiles in seconds.
//!
//! | command | what it does |
//! |---|---|
//! | `setup` | installs what a fresh machine lacks (wasm target, Chromium + chromedriver, wasm-bindgen-cli, clippy/rustfmt, npm packages of `tests/`, PostgreSQL); quick when all is present |
//! | `test [--quick] [--long]` | setup, then every check and test suite in order, stopping at the first failure; this is what `.ci/run` calls |
//! | `test-browser` | the browser suite alone (see `browser.rs`) |
//! | `build-web` | the wasm package into `web/pkg/` (wasm-pack), which the server's build embeds |
//! | `run [ARGS...]` | builds the release server and execs `sluice serve ARGS...` |
//! | `bench [--long] [--runs N] [--only TEXT] [--peers]` | loopback throughput, memory and HEAD latency figures, with `--peers` beside rustus and `@tus/server`; updates `docs/benchmarks.md` |
//!
//! Every subcommand returns `Result<(), String>`; `main` prints the error and exits with 1.

mod bench;
// `browser.rs` builds the browser module's package and runs its suite (`cargo xtask test-browser`).
mod browser;
mod garage;
mod http;
// `peers.rs`: rustus, `@tus/server` and oha for `bench --peers`.
mod peers;
mod proc;
mod report;
mod run;
mod services;
mod setup;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  setup                  install what this machine lacks (idempotent)
  test [--quick] [--long]
                         setup, fmt, clippy, wasm check, cargo test, release build,
                         node interop tests, browser tests
                         --quick: skip fmt and clippy; --long: long campaigns
  test-browser           the browser test suite only
  build-web              build the wasm package into web/pkg/ (embedded by the server's build)
  run [ARGS...]          build the release server, then exec `sluice serve ARGS...`
  bench [--long] [--runs N] [--only TEXT] [--peers]
                         benchmark figures (writes docs/benchmarks.md); --long adds 8 GiB;
                         --runs: runs per scenario, median reported (default 3);
                         --only: scenarios whose name contains TEXT, docs left alone;
                         --peers: also rustus and @tus/server, interleaved with Sluice
                         (installed on first use: cargo install rustus, oha; npm ci)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        "setup" => no_args(rest).and_then(|()| setup::run()),
        "test" => test::Options::parse(rest).and_then(test::run),
        "test-browser" => no_args(rest).and_then(|()| browser::test()),
        "build-web" => no_args(rest).and_then(|()| run::build_web_package()),
        "run" => run::run(rest),
        "bench" => bench::Options::parse(rest).and_then(bench::run),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {command}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn no_args(rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(a) => Err(format!("unexpected argument `{a}`")),
    }
}
