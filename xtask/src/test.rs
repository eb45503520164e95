//! `cargo xtask test`: setup, then every check and suite in a fixed order. Each step prints a
//! banner; the first failure stops the run; a summary of times per step closes it.

use crate::proc::{self, cargo, command};
use crate::services;
use std::time::{Duration, Instant};

/// Flags of `cargo xtask test`.
pub struct Options {
    /// `--quick`: skip fmt and clippy.
    quick: bool,
    /// `--long`: long campaigns (bigger files), passed on to every suite as `SLUICE_LONG=1`.
    long: bool,
}

impl Options {
    /// Parses `--quick` and `--long`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options { quick: false, long: false };
        for arg in args {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--long" => opts.long = true,
                other => return Err(format!("unknown flag `{other}` (expected --quick, --long)")),
            }
        }
        Ok(opts)
    }
}

/// The in-process table modules of the server's test suite (tests/suite/common.rs's harness),
/// run against every store.
const IN_PROCESS_SUITES: &[&str] =
    &["auth", "concat", "creation", "flow", "form", "head", "hooks", "options", "patch", "termination"];

type Step = (&'static str, Box<dyn Fn() -> Result<(), String>>);

/// Runs the whole test sequence.
pub fn run(opts: Options) -> Result<(), String> {
    if opts.long {
        // Every suite (node interop, browser) reads the same switch; set before any thread starts.
        std::env::set_var("SLUICE_LONG", "1");
    }
    let mut steps: Vec<Step> = vec![("setup", Box::new(crate::setup::run))];
    if !opts.quick {
        steps.push(("cargo fmt --check", Box::new(|| proc::run(cargo().args(["fmt", "--all", "--", "--check"])))));
        steps.push((
            "cargo clippy",
            Box::new(|| proc::run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))),
        ));
    }
    steps.push((
        "sluice-core for wasm32",
        Box::new(|| proc::run(cargo().args(["check", "-p", "sluice-core", "--target", "wasm32-unknown-unknown"]))),
    ));
    steps.push((
        "cargo test",
        Box::new(|| {
            // PostgreSQL suites (contract, locks, several instances) need a server: a throwaway
            // one for this step, stopped when it ends (services.rs).
            let postgres = services::Postgres::start()?;
            proc::run(cargo().args(["test", "--workspace"]).env("SLUICE_TEST_POSTGRES", postgres.url()))
        }),
    ));
    steps.push((
        "in-process tests, memory store",
        Box::new(|| {
            // The protocol tables again, over the in-memory stores: the storage seam is not
            // shaped around files.
            proc::run(in_process_tables().env("SLUICE_TEST_STORE", "memory"))
        }),
    ));
    steps.push((
        "in-process tests, PostgreSQL state",
        Box::new(|| {
            // The protocol tables again, over PostgreSQL records and locks (bytes on disk).
            let postgres = services::Postgres::start()?;
            let mut cmd = in_process_tables();
            proc::run(cmd.env("SLUICE_TEST_STORE", "postgres").env("SLUICE_TEST_POSTGRES", postgres.url()))
        }),
    ));
    steps.push(("release build", Box::new(build_release_server)));
    steps.push(("S3 store (Garage)", Box::new(s3_suites)));
    steps.push(("interop (node)", Box::new(interop)));
    steps.push(("e2e (Chromium)", Box::new(e2e)));
    if proc::root().join("crates/sluice-browser").exists() {
        // The browser module's suite (wasm tests in Chromium against real servers): browser.rs.
        steps.push(("browser", Box::new(crate::browser::test)));
    }
    let fuzz_seconds = if opts.long { "120" } else { "10" };
    let long = opts.long;
    steps.push((
        "fuzz smoke",
        Box::new(move || {
            // Builds every target and runs each briefly on the seed corpus (installs nightly and
            // cargo-fuzz when missing), uninstrumented at opt-level 1 (the build is most of the
            // cost); `--long` runs each for two minutes under ASan, fully optimised.
            let mut cmd = command("bash");
            cmd.arg("fuzz/smoke.sh").env("FUZZ_SECONDS", fuzz_seconds);
            if long {
                cmd.env("FUZZ_SANITIZER", "address");
            }
            proc::run(&mut cmd)
        }),
    ));

    let started = Instant::now();
    let mut times: Vec<(&str, Duration, bool)> = Vec::new();
    let mut failure = None;
    for (name, f) in &steps {
        println!("\n==== xtask test: {name} ====");
        let t = Instant::now();
        let result = f();
        times.push((name, t.elapsed(), result.is_ok()));
        if let Err(e) = result {
            failure = Some(format!("step `{name}` failed: {e}"));
            break;
        }
    }
    println!("\n==== xtask test: summary ====");
    for (name, took, ok) in &times {
        println!("{:<24} {:>8.1} s  {}", name, took.as_secs_f64(), if *ok { "ok" } else { "FAILED" });
    }
    for (name, _) in steps.iter().skip(times.len()) {
        println!("{name:<24} {:>8}    not run", "-");
    }
    println!("{:<24} {:>8.1} s", "total", started.elapsed().as_secs_f64());
    let passed = times.iter().filter(|t| t.2).count();
    let failed = times.len() - passed;
    let skipped = steps.len() - times.len();
    println!("steps: {passed} passed, {failed} failed, {skipped} skipped");
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `cargo test` of the server suite's in-process table modules only.
fn in_process_tables() -> std::process::Command {
    let mut cmd = cargo();
    cmd.args(["test", "-p", "sluice-server", "--test", "suite", "--"]);
    for suite in IN_PROCESS_SUITES {
        cmd.arg(format!("{suite}::"));
    }
    cmd
}

/// The wasm package into `web/pkg/`, then `cargo build --release -p sluice-server`, which embeds
/// it; shared with `run` and `bench`.
pub fn build_release_server() -> Result<(), String> {
    crate::run::build_web_package()?;
    proc::run(cargo().args(["build", "--release", "-p", "sluice-server"]))
}

/// The S3 byte store against a real Garage started for the step (and stopped after it,
/// even on failure): the storage contract, the black-box S3 suite against the server
/// binary, several instances sharing Garage and PostgreSQL, and the in-process protocol
/// tables over S3 bytes.
fn s3_suites() -> Result<(), String> {
    let postgres = services::Postgres::start()?;
    crate::garage::with_garage(|garage| {
        let with_env = |cmd: &mut std::process::Command| {
            for (name, value) in garage.env() {
                cmd.env(name, value);
            }
        };
        let mut suites = cargo();
        suites.args([
            "test",
            "-p",
            "sluice-server",
            "--test",
            "suite",
            "--",
            "storage_contract::",
            "s3::",
            "instances::",
        ]);
        with_env(&mut suites);
        proc::run(suites.env("SLUICE_TEST_POSTGRES", postgres.url()))?;
        let mut tables = in_process_tables();
        with_env(&mut tables);
        proc::run(tables.env("SLUICE_TEST_STORE", "s3"))
    })
}

/// The end-to-end tests in Chromium (the page, the status page, the npm package) against the
/// release binary (built with the page's wasm package by the step before).
fn e2e() -> Result<(), String> {
    let mut cmd = command("node");
    cmd.args(["--test", "tests/e2e/"]).env("SLUICE_BIN", proc::root().join("target/release/sluice"));
    proc::run(&mut cmd)
}

/// The node interop tests against the release binary (`SLUICE_LONG=1` from `--long` is
/// inherited).
fn interop() -> Result<(), String> {
    let root = proc::root();
    let bin = root.join("target/release/sluice");
    if !bin.exists() {
        return Err(format!("{} is missing", bin.display()));
    }
    let mut cmd = command("node");
    cmd.args(["--test", "tests/interop/"]).env("SLUICE_BIN", &bin);
    proc::run(&mut cmd)
}
