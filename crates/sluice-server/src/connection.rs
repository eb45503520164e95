//! Connections on the public listener: admitted per client at accept time, and every request
//! head timed.
//!
//! A connection that has not finished its request head costs a few KiB, so the ceiling on open
//! connections is high; what keeps one address from taking them all is a cap per client address
//! ([`Gate`]), checked when the connection is accepted: past it the connection is closed at once,
//! before a byte is read, and counted. Trusted proxies are exempt (every client behind them shares
//! their address; the proxy limits its own clients).
//!
//! actix times only the first request head on a connection (`client_request_timeout`, answered
//! `408`); a keep-alive connection that starts a second request and then trickles its head would
//! hold its slot forever. [`Connection`] closes it when that head is not complete within the same
//! timeout, counted as `header_timeout`. It learns when a request is being served from
//! [`track_requests`], the outermost middleware, through a flag shared with the connection.

use crate::client::TrustedProxies;
use crate::metrics::{ConnectionMetrics, ConnectionRefusal};
use crate::worker::OpenHere;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Limits on the public listener's connections.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionLimits {
    /// Open connections in all (the ceiling).
    pub max_total: usize,
    /// Open connections one client address may hold (IPv6: one /64).
    pub max_per_client: u32,
    /// Time a request head may take, from its first byte.
    pub header_timeout: Duration,
    /// Peers exempt from the per-client cap.
    pub trusted_proxies: TrustedProxies,
}

/// Admits connections at accept time.
pub(crate) struct Gate {
    limits: ConnectionLimits,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, u32>>,
    metrics: Arc<ConnectionMetrics>,
}

impl Gate {
    /// A gate with `limits`, reporting to `metrics`.
    pub(crate) fn new(limits: ConnectionLimits, metrics: Arc<ConnectionMetrics>) -> Arc<Gate> {
        Arc::new(Gate { limits, total: AtomicUsize::new(0), per_client: Mutex::default(), metrics })
    }

    /// Admits a connection from `peer`, or refuses it (counted by reason).
    pub(crate) fn admit(self: &Arc<Self>, peer: Option<IpAddr>) -> Option<Admitted> {
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.limits.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            self.metrics.refuse(ConnectionRefusal::ConnectionLimit);
            return None;
        }
        let key = peer.filter(|ip| !self.limits.trusted_proxies.contains(*ip)).map(client_key);
        if let Some(key) = key {
            let mut per_client = self.per_client.lock().unwrap_or_else(PoisonError::into_inner);
            let open = per_client.entry(key).or_default();
            if *open >= self.limits.max_per_client {
                drop(per_client);
                self.total.fetch_sub(1, Ordering::Relaxed);
                self.metrics.refuse(ConnectionRefusal::TooManyConnections);
                return None;
            }
            *open += 1;
        }
        self.metrics.open.inc();
        Some(Admitted { gate: self.clone(), key })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// IPv6 clients are counted by /64, the block one subscriber usually gets.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// An admitted connection's place; given back on drop.
pub(crate) struct Admitted {
    gate: Arc<Gate>,
    key: Option<IpAddr>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut per_client = self.gate.per_client.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(open) = per_client.get_mut(&key) {
                *open -= 1;
                if *open == 0 {
                    per_client.remove(&key);
                }
            }
        }
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
        self.gate.metrics.open.dec();
    }
}

/// What the connection and its requests share: how many requests are being served, and
/// whether any has been.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    serving: AtomicU32,
    served_any: AtomicBool,
}

/// A TCP connection on the public listener, holding its place in the [`Gate`] and timing
/// every request head after the first (see the module docs).
pub(crate) struct Connection {
    io: TcpStream,
    activity: Arc<Activity>,
    header_timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    first_write: bool,
    metrics: Arc<ConnectionMetrics>,
    _admitted: Admitted,
    _open_here: OpenHere,
}

impl Connection {
    /// Wraps an admitted stream.
    pub(crate) fn new(io: TcpStream, admitted: Admitted) -> Connection {
        let header_timeout = admitted.gate.limits.header_timeout;
        let metrics = admitted.gate.metrics.clone();
        Connection {
            io,
            activity: Arc::default(),
            header_timeout,
            deadline: None,
            first_write: true,
            metrics,
            _admitted: admitted,
            _open_here: OpenHere::new(),
        }
    }

    /// The state shared with this connection's requests (put into the connection's data, where
    /// [`track_requests`] finds it).
    pub(crate) fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }

    /// After a read: arms the head deadline when bytes arrive between requests, disarms it
    /// while a request is served; an error once it has passed.
    fn watch_head(&mut self, cx: &mut Context<'_>, read_something: bool) -> io::Result<()> {
        if self.activity.serving.load(Ordering::Acquire) > 0 || !self.activity.served_any.load(Ordering::Acquire) {
            // Serving, or before the first request (actix's own timer answers 408 there).
            self.deadline = None;
            return Ok(());
        }
        if self.deadline.is_none() && read_something {
            self.deadline = Some(Box::pin(tokio::time::sleep_until(Instant::now() + self.header_timeout)));
        }
        if let Some(deadline) = &mut self.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                self.metrics.refuse(ConnectionRefusal::HeaderTimeout);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time"));
            }
        }
        Ok(())
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let read_something = buf.filled().len() > before;
        if let Err(e) = self.watch_head(cx, read_something) {
            return Poll::Ready(Err(e));
        }
        polled
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if std::mem::take(&mut self.first_write) && !self.activity.served_any.load(Ordering::Acquire) {
            // The first bytes written before any request was served are actix's own refusal of
            // the first head: count it like the refusals the app answers.
            match buf.get(..12) {
                Some(b"HTTP/1.1 408") | Some(b"HTTP/1.0 408") => self.metrics.refuse(ConnectionRefusal::HeaderTimeout),
                Some(status) if status.get(9) == Some(&b'4') => self.metrics.refuse(ConnectionRefusal::MalformedHead),
                _ => {}
            }
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.first_write {
            // Keep the refusal check above on a plain write.
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Marks a request as served from the moment its head is parsed until its response body is
/// done, so its connection's head deadline does not run meanwhile. Outermost middleware of the
/// public app; does nothing for connections that are not a [`Connection`].
pub(crate) async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let serving = req.request().conn_data::<Arc<Activity>>().cloned().map(Serving::start);
    let response = next.call(req).await?;
    Ok(response.map_into_boxed_body().map_body(|_, body| ServedBody { body, _serving: serving }))
}

/// One request being served on a connection.
struct Serving(Arc<Activity>);

impl Serving {
    fn start(activity: Arc<Activity>) -> Serving {
        activity.served_any.store(true, Ordering::Release);
        activity.serving.fetch_add(1, Ordering::AcqRel);
        Serving(activity)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that ends the request's [`Serving`] when it is dropped (sent or abandoned).
struct ServedBody {
    body: BoxBody,
    _serving: Option<Serving>,
}

impl MessageBody for ServedBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max_total: usize, max_per_client: u32, trusted: &str) -> Arc<Gate> {
        let nets = trusted.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        Gate::new(
            ConnectionLimits {
                max_total,
                max_per_client,
                header_timeout: Duration::from_secs(1),
                trusted_proxies: TrustedProxies::new(nets, Default::default()),
            },
            Arc::new(ConnectionMetrics::default()),
        )
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn one_address_gets_its_cap_and_others_are_unaffected() {
        let gate = gate(100, 2, "");
        let a = gate.admit(ip("192.0.2.1")).unwrap();
        let _b = gate.admit(ip("192.0.2.1")).unwrap();
        assert!(gate.admit(ip("192.0.2.1")).is_none());
        assert!(gate.admit(ip("192.0.2.2")).is_some(), "another address");
        drop(a);
        assert!(gate.admit(ip("192.0.2.1")).is_some(), "a place is given back on close");
        assert_eq!(gate.metrics.refusals()["too_many_connections"], 1);
    }

    #[test]
    fn ipv6_clients_are_counted_by_64_and_trusted_proxies_are_exempt() {
        let gate = gate(100, 1, "10.0.0.0/8");
        let _a = gate.admit(ip("2001:db8:1:2::1")).unwrap();
        assert!(gate.admit(ip("2001:db8:1:2::ffff")).is_none(), "same /64");
        assert!(gate.admit(ip("2001:db8:1:3::1")).is_some(), "another /64");
        let proxied: Vec<_> = (0..10).map(|_| gate.admit(ip("10.1.2.3")).unwrap()).collect();
        assert_eq!(proxied.len(), 10);
    }

    #[test]
    fn the_ceiling_holds_for_everyone() {
        let gate = gate(3, 10, "10.0.0.0/8");
        let held: Vec<_> = ["192.0.2.1", "192.0.2.2", "10.0.0.1"].iter().map(|a| gate.admit(ip(a)).unwrap()).collect();
        assert!(gate.admit(ip("192.0.2.3")).is_none() && gate.admit(ip("10.0.0.1")).is_none());
        assert_eq!(gate.open(), 3);
        drop(held);
        assert_eq!((gate.open(), gate.metrics.open.get()), (0, 0));
        assert_eq!(gate.metrics.refusals()["connection_limit"], 2);
    }
}
