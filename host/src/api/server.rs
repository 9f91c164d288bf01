//! The HTTP server: hyper HTTP/1.1 connections under limits that keep the service answering when
//! clients are slow, idle or many (`stowage serve --header-timeout`, `--request-timeout`,
//! `--max-connections`).
//!
//! - A request header must be complete within `header_timeout` of the connection opening or of
//!   the previous response; hyper's `header_read_timeout` closes the connection otherwise, so it
//!   is also the keep-alive idle timeout (a slow header, an idle connection).
//! - A request must have its response head within `request_timeout`, reading its body included
//!   (a trickled body gets 408; tower-http's `TimeoutLayer`). Streamed response bodies (proxied
//!   objects) are not limited: they are paced by the client.
//! - At most `max_connections` are open. At the cap, the connection idle the longest is closed to
//!   make room (nginx drains idle keep-alive connections the same way); with none idle the new
//!   one is closed at once. Accept errors (out of file descriptors) back off for 50 ms.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Notify;
use tower::{Layer, ServiceExt};
use tower_http::timeout::TimeoutLayer;

use crate::App;

/// The server's limits (`stowage serve` flags; see `config.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed for a complete request header, from the connection opening or the previous
    /// response (so also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time allowed from a request header to its response head, reading the body included.
    pub request_timeout: Duration,
    /// Connections open at once; beyond it the longest idle one is closed.
    pub max_connections: usize,
}

/// File descriptors kept for everything but client connections (the database, adapters' files
/// and sockets, the listener): [`default_max_connections`] leaves them free.
const RESERVED_FDS: u64 = 1024;

/// The default connection cap: the process's open-file limit (raised to its hard limit) less
/// [`RESERVED_FDS`], at least 64.
pub fn default_max_connections() -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    limit.saturating_sub(RESERVED_FDS).max(64) as usize
}

/// Pending connections the kernel queues before `accept` (capped by `net.core.somaxconn`): a
/// burst of connections waits there instead of being dropped (std and tokio ask for 128 or
/// 1,024; a dropped SYN costs the client a 1 s retransmit).
const BACKLOG: u32 = 4096;

/// A listener on `addr` with a [`BACKLOG`]-deep accept queue.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// One open connection, as the cap sees it.
struct Conn {
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Milliseconds since the server started when it last opened or finished a response.
    idle_since_ms: AtomicU64,
    /// Asks the connection to finish its current response and close.
    close: Notify,
}

/// The open connections, by id.
struct Conns {
    started: Instant,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Notified when the last connection closes (graceful shutdown waits for it).
    drained: Notify,
}

impl Conns {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap();
        open.remove(&id);
        if open.is_empty() {
            self.drained.notify_waiters();
        }
    }

    /// Makes room for one more connection below `cap`: `false` when every one is busy.
    fn make_room(&self, cap: usize) -> bool {
        let open = self.open.lock().unwrap();
        if open.len() < cap {
            return true;
        }
        let idlest = open
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since_ms.load(Ordering::Relaxed));
        match idlest {
            Some(c) => {
                // Marked busy so that the next eviction picks another one.
                c.in_flight.fetch_add(1, Ordering::AcqRel);
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn close_all(&self) {
        for c in self.open.lock().unwrap().values() {
            c.close.notify_one();
        }
    }
}

/// Counts a request in flight on its connection until its response body is dropped (sent or
/// abandoned).
struct InFlight {
    conn: Arc<Conn>,
    conns: Arc<Conns>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.idle_since_ms.store(self.conns.now_ms(), Ordering::Relaxed);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then lets open
/// connections finish their current response (at most 10 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = TimeoutLayer::with_status_code(http::StatusCode::REQUEST_TIMEOUT, limits.request_timeout)
        .layer(super::service(app));
    let conns = Arc::new(Conns {
        started: Instant::now(),
        open: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        drained: Notify::new(),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accepting a connection failed, retrying in 50 ms: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        if !conns.make_room(limits.max_connections) {
            tracing::warn!(max_connections = limits.max_connections, "connection refused: every connection is busy");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, conn) = conns.add();
        let (conns, service, http) = (conns.clone(), service.clone(), http.clone());
        tokio::spawn(async move {
            let on_request = {
                let (conn, conns) = (conn.clone(), conns.clone());
                hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    conn.in_flight.fetch_add(1, Ordering::AcqRel);
                    let guard = InFlight { conn: conn.clone(), conns: conns.clone() };
                    let service = service.clone();
                    async move {
                        let response = service.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
                        Ok::<_, Infallible>(response.map(|body| {
                            Body::new(body.map_frame(move |frame| {
                                let _ = &guard;
                                frame
                            }))
                        }))
                    }
                })
            };
            let connection = http.serve_connection(TokioIo::new(stream), on_request);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = conn.close.notified() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            conns.remove(id);
        });
    }
    let drained = conns.drained.notified();
    if !conns.open.lock().unwrap().is_empty() {
        conns.close_all();
        let _ = tokio::time::timeout(Duration::from_secs(10), drained).await;
    }
    Ok(())
}
