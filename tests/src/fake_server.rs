//! The listening side shared by the fake servers (Koboldcpp, the Telegram Bot API): an axum app
//! on a fixed loopback port that can be stopped (clients then get "connection refused" and open
//! connections are dropped) and started again on the same port, so tests can take a peer down
//! and bring it back.
//!
//! Owns: binding, the accept loop, connection tracking, stop and restart. Does not own: what the
//! app answers.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Builds the app for one connection; the token, when cancelled, drops that connection (a fake
/// can hand it to its handlers to cut a connection mid-request).
pub type AppFactory = Arc<dyn Fn(CancellationToken) -> Router + Send + Sync>;

/// A fake server's listener. Stops listening when dropped.
pub struct FakeListener {
    port: u16,
    app: AppFactory,
    running: Mutex<Option<Running>>,
}

struct Running {
    token: CancellationToken,
    accept: JoinHandle<()>,
    connections: TaskTracker,
}

impl fmt::Debug for FakeListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeListener")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

impl FakeListener {
    /// Reserves a free loopback port for `app`; listening starts with [`FakeListener::restart`].
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub async fn new(app: AppFactory) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for a fake server");
        let port = listener.local_addr().expect("its address").port();
        drop(listener);
        Self {
            port,
            app,
            running: Mutex::new(None),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops listening and drops every open connection.
    pub async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(r) = running {
            r.token.cancel();
            // The accept loop ends when cancelled; an error would only say it was aborted.
            if let Err(e) = r.accept.await {
                assert!(
                    e.is_cancelled(),
                    "a fake server's accept loop panicked: {e}"
                );
            }
            r.connections.close();
            r.connections.wait().await;
        }
    }

    /// Listens (again) on the same port.
    ///
    /// # Panics
    /// The port cannot be bound within the patience (taken by another process).
    pub async fn restart(&self) {
        self.stop().await;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = tokio::time::Instant::now();
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        started.elapsed() < crate::eventually::patience(),
                        "cannot listen on {addr} again: {e}"
                    );
                    tokio::time::sleep(crate::eventually::POLL_INTERVAL).await;
                }
            }
        };
        let running = spawn(listener, self.app.clone());
        *lock(&self.running) = Some(running);
    }
}

impl Drop for FakeListener {
    fn drop(&mut self) {
        if let Some(r) = lock(&self.running).take() {
            r.token.cancel();
            r.accept.abort();
        }
    }
}

/// One task per connection (HTTP/1.1), so that a connection can be dropped on its own.
fn spawn(listener: TcpListener, app: AppFactory) -> Running {
    let token = CancellationToken::new();
    let t = token.clone();
    let connections = TaskTracker::new();
    let tracker = connections.clone();
    let accept = tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = t.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => continue,
                },
            };
            let conn = t.child_token();
            let service = hyper_util::service::TowerToHyperService::new(app(conn.clone()));
            tracker.spawn(async move {
                let serve = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::select! {
                    _ = serve => {}
                    () = conn.cancelled() => {}
                }
            });
        }
    });
    Running {
        token,
        accept,
        connections,
    }
}
