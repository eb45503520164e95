//! The benchmark baseline: a plain streaming upload handler with no protocol.
//!
//! `baseline ADDR DIR` listens on `ADDR` (e.g. `127.0.0.1:0`), prints
//! `listening on http://HOST:PORT` as its first stdout line, and accepts `PUT /{name}`, writing
//! the request body to `DIR/{name}` chunk by chunk as it arrives (one `write_all` per payload
//! chunk, no buffering beyond actix's). `cargo xtask bench` compares Sluice against it: the cost
//! of the tus protocol, the policy checks and the bookkeeping is the difference.

use actix_web::{web, App, HttpResponse, HttpServer};
use futures_util::StreamExt;
use std::io::Write;
use std::path::PathBuf;

async fn put(
    name: web::Path<String>,
    mut body: web::Payload,
    dir: web::Data<PathBuf>,
) -> Result<HttpResponse, actix_web::Error> {
    let name = name.into_inner();
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        return Ok(HttpResponse::BadRequest().body("bad name"));
    }
    let mut file = std::fs::File::create(dir.join(&name))?;
    let mut written: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    Ok(HttpResponse::Created().body(written.to_string()))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(dir)) = (args.next(), args.next()) else {
        eprintln!("usage: baseline ADDR DIR");
        std::process::exit(2);
    };
    let dir = web::Data::new(PathBuf::from(dir));
    let server =
        HttpServer::new(move || App::new().app_data(dir.clone()).route("/{name}", web::put().to(put))).bind(&addr)?;
    for bound in server.addrs() {
        println!("listening on http://{bound}");
    }
    std::io::stdout().flush()?;
    server.run().await
}
