//! `GET /files/{id}`: download a completed upload (unless turned off), whole or one
//! byte range at a time (`Range: bytes=…`, so multi-GiB downloads resume too).

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::protocol::{parse_id, requester};
use crate::AppState;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use sluice_core::Reason;
use std::ops::Range;

/// Streams the stored bytes as an attachment, never as inline content.
pub(super) async fn handle(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    if !state.settings.allow_download {
        return Err(Error::new(Reason::MethodNotAllowed, "Downloads are turned off on this server."));
    }
    let id = parse_id(&path)?;
    let who = requester(&req, &caller);
    let length = state.engine.info(who, &id, false).await?.offset;
    let wanted = match req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) => parse_range(value, length)?,
        None => None,
    };
    let (record, body) = state.engine.read(who, &id, wanted.clone()).await?;
    let name = record.file_name().unwrap_or_else(|| id.to_string());
    let mut response = match &wanted {
        Some(range) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", range.start, range.end - 1, record.offset),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    let sent = wanted.map_or(record.offset, |r| r.end - r.start);
    Ok(response
        .content_type("application/octet-stream")
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::FilenameExt(header::ExtendedValue {
                charset: header::Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.into_bytes(),
            })],
        })
        .no_chunking(sent)
        .streaming(body))
}

/// One `bytes=` range of a `length`-byte file: `Some(range)` to send, `None` to send
/// it all (a form this server does not serve partially, e.g. several ranges), or
/// `416` when no byte of the range exists.
fn parse_range(value: &str, length: u64) -> Result<Option<Range<u64>>> {
    let unsatisfiable = || {
        Error::new(Reason::RangeNotSatisfiable, format!("The file has {length} bytes; that range is outside it."))
            .with_header("content-range", format!("bytes */{length}"))
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ok(None) };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let range = match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes
        (true, _, Some(suffix)) if suffix > 0 => length.saturating_sub(suffix)..length,
        (true, _, _) => return Err(unsatisfiable()),
        (false, Some(start), None) if last.trim().is_empty() => start..length,
        (false, Some(start), Some(end)) if end >= start => start..end.saturating_add(1).min(length),
        _ => return Ok(None),
    };
    if range.start >= length || range.is_empty() {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=50-5000", 100).unwrap(), Some(50..100));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None, "several ranges: the whole file");
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None, "another unit: the whole file");
        assert_eq!(parse_range("bytes=9-3", 100).unwrap(), None, "invalid: ignored");
        for bad in ["bytes=100-", "bytes=100-200", "bytes=-0"] {
            let err = parse_range(bad, 100).unwrap_err();
            assert_eq!(err.reason(), Reason::RangeNotSatisfiable, "{bad}");
        }
        assert!(parse_range("bytes=0-0", 0).is_err(), "an empty file has no byte 0");
    }
}
