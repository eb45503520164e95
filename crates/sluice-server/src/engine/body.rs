//! The PATCH body on its way to storage: counted, capped, hashed, sniffed.
//!
//! [`IncomingBody`] wraps the raw payload stream and passes bytes through
//! without buffering them. It ends the stream early, with [`BodyStopped`],
//! the moment something is wrong, and remembers why in [`Stop`]:
//!
//! - the body runs past its allowance: bytes up to the limit go through,
//!   nothing past it ([`Stop::TooLong`]);
//! - the file's leading bytes are complete and their type is refused
//!   ([`Stop::TypeRefused`]), before any byte past the sniff window is stored;
//! - the body ends and its digest differs from `Upload-Checksum`
//!   ([`Stop::ChecksumMismatch`]);
//! - a newer request for the same upload took over ([`Stop::Interrupted`]);
//! - no byte arrived for the idle timeout ([`Stop::Idle`]);
//! - the client's connection failed ([`Stop::Client`]).

use crate::store::BodyStopped;
use bytes::Bytes;
use futures_util::Stream;
use sluice_core::{Hasher, Policy, Rejection};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Why a body ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// More bytes than allowed were sent.
    TooLong,
    /// The leading bytes were sniffed and refused.
    TypeRefused(Rejection),
    /// The digest did not match `Upload-Checksum`.
    ChecksumMismatch,
    /// A newer request for the same upload took over.
    Interrupted,
    /// No byte arrived for the idle timeout.
    Idle,
    /// The client's connection failed; the text says how.
    Client(String),
}

/// The file's leading bytes, gathered until the sniff window is full.
pub(crate) struct SniffWindow {
    /// Leading bytes so far (seeded with what the record already holds).
    pub seen: Vec<u8>,
    /// How many leading bytes to gather: `min(SNIFF_LEN, file length)`.
    pub needed: usize,
    /// The declared file name (refines plain text).
    pub file_name: Option<String>,
    /// The policy to judge the type by once the window is full; `None` only gathers
    /// (a partial upload is never judged on its own).
    pub policy: Option<Arc<Policy>>,
}

/// A payload stream made safe to hand to storage (see the module docs).
pub(crate) struct IncomingBody<S> {
    inner: S,
    allowed: u64,
    received: u64,
    checksum: Option<(Hasher, Vec<u8>)>,
    sniff: Option<SniffWindow>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    idle_after: Duration,
    idle: Pin<Box<Sleep>>,
    last_byte: Instant,
    counter: Option<prometheus_client::metrics::counter::Counter>,
    digest: Option<sha2::Sha256>,
    exact: bool,
    stop: Option<Stop>,
    stop_next: bool,
    done: bool,
}

impl<S> IncomingBody<S> {
    /// Wraps `inner`, letting at most `allowed` bytes through. `checksum` is the
    /// hasher and the expected digest; `cancel` fires when a newer request takes
    /// over; the body stops if no byte arrives for `idle_after`.
    pub(crate) fn new(
        inner: S,
        allowed: u64,
        checksum: Option<(Hasher, Vec<u8>)>,
        sniff: Option<SniffWindow>,
        cancel: CancellationToken,
        idle_after: Duration,
    ) -> Self {
        IncomingBody {
            inner,
            allowed,
            received: 0,
            checksum,
            sniff,
            cancelled: Box::pin(cancel.cancelled_owned()),
            idle_after,
            idle: Box::pin(tokio::time::sleep(idle_after)),
            last_byte: Instant::now(),
            counter: None,
            digest: None,
            exact: false,
            stop: None,
            stop_next: false,
            done: false,
        }
    }

    /// Also counts every byte let through on `counter`, as it arrives.
    pub(crate) fn counting(mut self, counter: prometheus_client::metrics::counter::Counter) -> Self {
        self.counter = Some(counter);
        self
    }

    /// Treats a body that ends before `allowed` bytes as cut short
    /// ([`Stop::Client`]), for bodies whose length is known in advance.
    pub(crate) fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    /// Also feeds every byte let through to `state`, a SHA-256 of the bytes before it
    /// (see [`IncomingBody::take_digest`]): a whole file's digest, computed as it arrives.
    pub(crate) fn digesting(mut self, state: sha2::Sha256) -> Self {
        self.digest = Some(state);
        self
    }

    /// The SHA-256 state after what was let through, once.
    pub(crate) fn take_digest(&mut self) -> Option<sha2::Sha256> {
        self.digest.take()
    }

    /// The leading bytes gathered (the window's bytes, seed included), once.
    pub(crate) fn take_head(&mut self) -> Option<Vec<u8>> {
        self.sniff.take().map(|window| window.seen)
    }

    /// Why the body ended early, if it did.
    pub(crate) fn stop(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// Bytes let through so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    fn halt(&mut self, why: Stop) -> Poll<Option<Result<Bytes, BodyStopped>>> {
        self.stop = Some(why);
        self.done = true;
        Poll::Ready(Some(Err(BodyStopped)))
    }

    /// Feeds leading bytes to the sniff window; a refusal once it is full.
    fn sniff(&mut self, bytes: &[u8]) -> Option<Rejection> {
        let window = self.sniff.as_mut()?;
        if window.seen.len() >= window.needed {
            return None;
        }
        let take = (window.needed - window.seen.len()).min(bytes.len());
        window.seen.extend_from_slice(&bytes[..take]);
        if window.seen.len() < window.needed {
            return None;
        }
        let policy = window.policy.take()?;
        policy.check_type(&window.seen, window.file_name.as_deref()).err()
    }
}

impl<S, E> Stream for IncomingBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, BodyStopped>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.stop_next {
            return this.halt(Stop::TooLong);
        }
        if this.cancelled.as_mut().poll(cx).is_ready() {
            return this.halt(Stop::Interrupted);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => {
                // The timer is only re-armed when it fires, not per chunk.
                while this.idle.as_mut().poll(cx).is_ready() {
                    let deadline = this.last_byte + this.idle_after;
                    if Instant::now() >= deadline {
                        return this.halt(Stop::Idle);
                    }
                    this.idle.as_mut().reset(deadline);
                }
                Poll::Pending
            }
            Poll::Ready(Some(Err(e))) => this.halt(Stop::Client(e.to_string())),
            Poll::Ready(None) => {
                if this.exact && this.received < this.allowed {
                    let why = format!("the body ended after {} of {} bytes", this.received, this.allowed);
                    return this.halt(Stop::Client(why));
                }
                if let Some((hasher, expected)) = this.checksum.take() {
                    if hasher.finalize() != expected {
                        return this.halt(Stop::ChecksumMismatch);
                    }
                }
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(mut bytes))) => {
                this.last_byte = Instant::now();
                let room = this.allowed - this.received;
                if bytes.len() as u64 > room {
                    bytes.truncate(room as usize);
                    this.stop_next = true;
                }
                if let Some(refusal) = this.sniff(&bytes) {
                    return this.halt(Stop::TypeRefused(refusal));
                }
                this.received += bytes.len() as u64;
                if let Some(counter) = &this.counter {
                    counter.inc_by(bytes.len() as u64);
                }
                if let Some((hasher, _)) = this.checksum.as_mut() {
                    hasher.update(&bytes);
                }
                if let Some(hasher) = this.digest.as_mut() {
                    sha2::Digest::update(hasher, &bytes);
                }
                if bytes.is_empty() && this.stop_next {
                    return this.halt(Stop::TooLong);
                }
                Poll::Ready(Some(Ok(bytes)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};
    use sluice_core::{Algorithm, Reason};

    type Chunks = Vec<Result<Bytes, String>>;
    const IDLE: Duration = Duration::from_secs(30);

    fn chunks(parts: &[&'static [u8]]) -> Chunks {
        parts.iter().map(|p| Ok(Bytes::from_static(p))).collect()
    }

    async fn drain(
        mut body: IncomingBody<stream::Iter<std::vec::IntoIter<Result<Bytes, String>>>>,
    ) -> (Vec<u8>, Option<Stop>) {
        let mut out = Vec::new();
        while let Some(item) = body.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(BodyStopped) => break,
            }
        }
        (out, body.stop().cloned())
    }

    fn body(parts: Chunks, allowed: u64) -> IncomingBody<stream::Iter<std::vec::IntoIter<Result<Bytes, String>>>> {
        IncomingBody::new(stream::iter(parts), allowed, None, None, CancellationToken::new(), IDLE)
    }

    #[actix_web::test]
    async fn passes_bytes_through_within_the_allowance() {
        let (out, stop) = drain(body(chunks(&[b"abc", b"def"]), 6)).await;
        assert_eq!((out.as_slice(), stop), (&b"abcdef"[..], None));
    }

    #[actix_web::test]
    async fn cuts_at_the_first_byte_past_the_limit() {
        let (out, stop) = drain(body(chunks(&[b"abc", b"defgh"]), 5)).await;
        assert_eq!((out.as_slice(), stop), (&b"abcde"[..], Some(Stop::TooLong)));
        let (out, stop) = drain(body(chunks(&[b"abc", b"d"]), 3)).await;
        assert_eq!((out.as_slice(), stop), (&b"abc"[..], Some(Stop::TooLong)));
    }

    #[actix_web::test]
    async fn checks_the_digest_at_the_end() {
        let digest = |data: &[u8]| {
            let mut h = Algorithm::Sha256.hasher();
            h.update(data);
            h.finalize()
        };
        let ok = IncomingBody::new(
            stream::iter(chunks(&[b"hello ", b"world"])),
            100,
            Some((Algorithm::Sha256.hasher(), digest(b"hello world"))),
            None,
            CancellationToken::new(),
            IDLE,
        );
        assert_eq!(drain(ok).await.1, None);
        let bad = IncomingBody::new(
            stream::iter(chunks(&[b"hello ", b"world"])),
            100,
            Some((Algorithm::Sha256.hasher(), digest(b"hello there"))),
            None,
            CancellationToken::new(),
            IDLE,
        );
        assert_eq!(drain(bad).await.1, Some(Stop::ChecksumMismatch));
    }

    #[actix_web::test]
    async fn refuses_a_type_as_soon_as_the_window_is_full() {
        let policy = Arc::new(Policy::from_toml("allowed_types = [\"application/pdf\"]").unwrap());
        let window = SniffWindow { seen: b"\x89PN".to_vec(), needed: 12, file_name: None, policy: Some(policy) };
        let parts = chunks(&[b"G\r\n\x1a\n", b"\0\0\0\rIHDR", b"more"]);
        let body = IncomingBody::new(stream::iter(parts), 100, None, Some(window), CancellationToken::new(), IDLE);
        let (out, stop) = drain(body).await;
        assert_eq!(out, b"G\r\n\x1a\n");
        assert!(matches!(stop, Some(Stop::TypeRefused(r)) if r.reason == Reason::TypeNotAllowed));
    }

    #[actix_web::test]
    async fn stops_when_a_newer_request_takes_over() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let body = IncomingBody::new(stream::iter(chunks(&[b"abc"])), 100, None, None, cancel, IDLE);
        assert_eq!(drain(body).await, (Vec::new(), Some(Stop::Interrupted)));
    }

    #[actix_web::test]
    async fn stops_a_body_that_stalls() {
        let stalled = stream::iter(chunks(&[b"ab"])).chain(stream::pending());
        let mut body = IncomingBody::new(stalled, 100, None, None, CancellationToken::new(), Duration::from_millis(20));
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"ab"))));
        assert_eq!(body.next().await, Some(Err(BodyStopped)));
        assert_eq!(body.stop(), Some(&Stop::Idle));
    }

    #[actix_web::test]
    async fn reports_a_client_failure() {
        let parts = vec![Ok(Bytes::from_static(b"ab")), Err("connection reset".to_string())];
        let (out, stop) = drain(body(parts, 100)).await;
        assert_eq!((out.as_slice(), stop), (&b"ab"[..], Some(Stop::Client("connection reset".into()))));
    }
}
