//! Connection hygiene for the gateway's HTTP listeners (the local API on TCP and on its Unix
//! socket, the LAN page): one task per connection, served by hyper with a header-read timeout,
//! an idle timeout, and a cap on open connections.
//!
//! - A connection with no request in flight (half-open, still sending its headers, or idle
//!   between keep-alive requests) is closed after [`Limits::idle_timeout`].
//! - At most [`Limits::max_connections`] are open per listener. At the cap, a new connection
//!   closes the connection that has been idle longest, so a crowd of silent sockets never locks
//!   out a real client; when every connection is busy the new one is closed instead. Either way
//!   `markoff_http_connections_shed_total{listener}` counts it. The cap is on sockets really
//!   open: a closed connection frees its place only once its task has closed the socket, so a
//!   burst of connections never holds more descriptors than the cap.
//! - The caller's identity ([`Peer`]: the TCP address, or the kernel-checked uid of a Unix
//!   socket peer) goes into every request's extensions; the TCP address also as axum's
//!   `ConnectInfo<SocketAddr>`.
//!
//! Owns: accepting and closing connections. Does not own: routes or authentication (see
//! `super::http`, `super::api_auth`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::service::metrics::Labels;
use crate::service::supervisor::TaskError;

/// Who is at the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A local process on the Unix socket; the uid is the kernel's (`SO_PEERCRED`).
    Unix {
        /// Effective uid of the connecting process.
        uid: u32,
        /// Its pid, when the kernel gives one.
        pid: Option<i32>,
    },
}

/// Bounds of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// A connection without a request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// The request line and headers must arrive within this long.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            idle_timeout: Duration::from_secs(15),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// A listener that yields connections with their [`Peer`].
pub trait Acceptor: Send + 'static {
    /// The connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, Peer)>> + Send;
}

impl Acceptor for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<(Self::Io, Peer)> {
        let (stream, addr) = tokio::net::TcpListener::accept(self).await?;
        // Only a latency hint: a socket that refuses it still works.
        let _hint = stream.set_nodelay(true);
        Ok((stream, Peer::Tcp(addr)))
    }
}

impl Acceptor for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;

    async fn accept(&mut self) -> std::io::Result<(Self::Io, Peer)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        let cred = stream.peer_cred()?;
        Ok((
            stream,
            Peer::Unix {
                uid: cred.uid(),
                pid: cred.pid(),
            },
        ))
    }
}

/// What the table knows of one open connection.
#[derive(Debug)]
struct Slot {
    /// Requests in flight.
    busy: Arc<AtomicUsize>,
    /// Milliseconds since [`Table::epoch`] of the last request's start or end (or the accept).
    last: Arc<AtomicU64>,
    /// Closes the connection (gracefully: an idle one at once).
    close: CancellationToken,
}

#[derive(Debug)]
struct Table {
    epoch: Instant,
    slots: Mutex<HashMap<u64, Slot>>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Slot>> {
        self.slots.lock()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Makes room for one more connection under `max`, closing the idlest one if need be.
    fn make_room(&self, max: usize) -> Room {
        let mut slots = self.lock();
        if slots.len() < max {
            return Room::Free;
        }
        let idlest = slots
            .iter()
            .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, s)| s.last.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match idlest.and_then(|id| slots.remove(&id)) {
            Some(slot) => {
                slot.close.cancel();
                Room::Evicted
            }
            None => Room::Full,
        }
    }
}

/// Outcome of [`Table::make_room`].
#[derive(Debug, PartialEq, Eq)]
enum Room {
    /// Under the cap.
    Free,
    /// The idlest connection was closed for the new one.
    Evicted,
    /// Every connection is busy: the new one must go.
    Full,
}

/// Counts a request in flight on its connection while alive.
struct Busy {
    busy: Arc<AtomicUsize>,
    last: Arc<AtomicU64>,
    table: Arc<Table>,
}

impl Busy {
    fn new(busy: &Arc<AtomicUsize>, last: &Arc<AtomicU64>, table: &Arc<Table>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        last.store(table.now_ms(), Ordering::Release);
        Self {
            busy: busy.clone(),
            last: last.clone(),
            table: table.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.last.store(self.table.now_ms(), Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` with `limits` until `token` is cancelled; then lets the open
/// connections finish their requests. `name` labels the shed-connection counter and the logs.
///
/// # Errors
/// None today: accept errors (such as running out of file descriptors) are logged and retried.
pub async fn serve<A: Acceptor>(
    mut listener: A,
    name: &'static str,
    router: Router,
    limits: Limits,
    shed: Family<Labels, Counter>,
    token: CancellationToken,
) -> Result<(), TaskError> {
    let table = Arc::new(Table {
        epoch: Instant::now(),
        slots: Mutex::new(HashMap::new()),
    });
    let tracker = TaskTracker::new();
    let shed_count = shed
        .get_or_create(&vec![("listener".to_owned(), name.to_owned())])
        .clone();
    // One permit per connection whose socket is still open. The table says which connections
    // count against the cap; the permits say which descriptors are really still open: an evicted
    // connection keeps its permit until its task has closed the socket, so under a burst the
    // listener waits for those closes instead of accepting past the cap.
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = token.cancelled() => break,
            a = listener.accept() => a,
        };
        let (io, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: the connections already open keep being served; try again
                // shortly rather than spinning.
                warn!(listener = name, error = %e, "Cannot accept a connection.");
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        match table.make_room(limits.max_connections) {
            Room::Free => {}
            Room::Evicted => {
                shed_count.inc();
            }
            Room::Full => {
                shed_count.inc();
                debug!(
                    listener = name,
                    "Every connection is busy; a new one is closed."
                );
                drop(io);
                continue;
            }
        }
        let permit = tokio::select! {
            () = token.cancelled() => break,
            p = open.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        next_id += 1;
        let id = next_id;
        let slot = Slot {
            busy: Arc::new(AtomicUsize::new(0)),
            last: Arc::new(AtomicU64::new(table.now_ms())),
            close: token.child_token(),
        };
        let (busy, last, close) = (slot.busy.clone(), slot.last.clone(), slot.close.clone());
        table.lock().insert(id, slot);
        let conn = Connection {
            table: table.clone(),
            router: router.clone(),
            limits,
            peer,
            busy,
            last,
            close,
        };
        tracker.spawn(async move {
            conn.run(io).await;
            conn.table.lock().remove(&id);
            drop(permit);
        });
    }
    // Every connection's `close` is a child of `token`: idle ones close now, busy ones after
    // their answer.
    tracker.close();
    tracker.wait().await;
    Ok(())
}

struct Connection {
    table: Arc<Table>,
    router: Router,
    limits: Limits,
    peer: Peer,
    busy: Arc<AtomicUsize>,
    last: Arc<AtomicU64>,
    close: CancellationToken,
}

impl Connection {
    async fn run<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(&self, io: I) {
        let inner = TowerToHyperService::new(self.router.clone());
        let (peer, busy, last, table) = (
            self.peer,
            self.busy.clone(),
            self.last.clone(),
            self.table.clone(),
        );
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(peer);
            if let Peer::Tcp(addr) = peer {
                req.extensions_mut().insert(ConnectInfo(addr));
            }
            let guard = Busy::new(&busy, &last, &table);
            let fut = hyper::service::Service::call(&inner, req.map(axum::body::Body::new));
            async move {
                let res: Result<axum::response::Response, Infallible> = fut.await;
                drop(guard);
                res
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let closed = tokio::select! {
            r = conn.as_mut() => Some(r),
            () = self.close.cancelled() => None,
            () = self.idle() => None,
        };
        match closed {
            Some(Ok(())) => {}
            Some(Err(e)) => debug!(error = %e, "HTTP connection ended with an error."),
            None => {
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    debug!(error = %e, "HTTP connection ended with an error.");
                }
            }
        }
    }

    /// Completes once the connection has had no request in flight for the idle timeout.
    async fn idle(&self) {
        let timeout_ms = u64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        loop {
            let now = self.table.now_ms();
            let wait = if self.busy.load(Ordering::Acquire) > 0 {
                timeout_ms
            } else {
                let since = now.saturating_sub(self.last.load(Ordering::Acquire));
                if since >= timeout_ms {
                    return;
                }
                timeout_ms - since
            };
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }
}
