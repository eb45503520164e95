//! The server's integration tests, linked into one binary (one link, a fraction of
//! the disk of one binary per file): in-process protocol tables driven through
//! actix's test service (`common`), and black-box runs of the real `sluice`
//! binary over raw TCP (`blackbox`). Filter by module: `cargo test --test suite -- hostile::`.
#![allow(clippy::unwrap_used, missing_docs)]

mod blackbox;
mod common;
#[allow(dead_code)]
#[path = "../../../../xtask/src/garage.rs"]
mod garage;

mod auth;
mod binary;
mod client_identity;
mod concat;
mod crash_loop;
mod creation;
mod flood;
mod flow;
mod form;
mod head;
mod hooks;
mod hostile;
mod ietf;
mod instances;
mod jwt;
mod operations;
mod options;
mod patch;
mod postgres;
mod quotas;
mod s3;
mod storage_contract;
mod termination;
mod upload_cli;
