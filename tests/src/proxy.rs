//! A TCP proxy in front of a server, to take the server "down" for one client without stopping
//! it for everyone else: cut every open connection, refuse new ones, and let them through again.
//!
//! Owns: the listener on a free loopback port and one forwarding task per connection.
//! Does not own: the server behind it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    refusing: AtomicBool,
    /// Cancelled to cut the connections opened under it; replaced by a fresh one.
    generation: Mutex<CancellationToken>,
    accepted: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    fn generation(&self) -> CancellationToken {
        self.generation.lock().clone()
    }
}

impl TcpProxy {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream` (`host:port`).
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            refusing: AtomicBool::new(false),
            generation: Mutex::new(CancellationToken::new()),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if s.refusing.load(Ordering::Acquire) {
                    s.refused.fetch_add(1, Ordering::Relaxed);
                    // Reset at once: the client sees its connection fail.
                    let _ignored = client.set_zero_linger();
                    drop(client);
                    continue;
                }
                s.accepted.fetch_add(1, Ordering::Relaxed);
                let cut = s.generation();
                let upstream = s.upstream.clone();
                tokio::spawn(forward(client, upstream, cut));
            }
        });
        Self {
            addr,
            shared,
            accept,
        }
    }

    /// The proxy's address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Closes every open connection (clients and server both see them end).
    pub fn cut(&self) {
        let mut g = self.shared.generation.lock();
        g.cancel();
        *g = CancellationToken::new();
    }

    /// Refuses new connections (`true`) or lets them through again (`false`).
    pub fn refuse(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::Release);
    }

    /// "The server is down": refuse new connections and cut the open ones.
    pub fn down(&self) {
        self.refuse(true);
        self.cut();
    }

    /// "The server is back".
    pub fn up(&self) {
        self.refuse(false);
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn forward(mut client: TcpStream, upstream: String, cut: CancellationToken) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    tokio::select! {
        () = cut.cancelled() => {
            let _ignored = client.set_zero_linger();
            let _ignored = server.set_zero_linger();
        }
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}
