//! A fake upstream HTTP service on loopback, for the examples: `GET /price/{id}` answers a
//! price, and `POST /fault?mode=ok|outage|slow` switches how it behaves. During an outage it
//! answers 503 with a body carrying a secret-looking token, so a program can check that no
//! error text leaks into what it shows (the status page, its JSON, its own answers).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

/// What the upstream's outage answers carry: must never reach a page or a client.
pub const SECRET: &str = "SECRET-TOKEN-123";

/// How long a request takes in `slow` mode.
pub const SLOW: Duration = Duration::from_secs(2);

/// How the upstream behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 200 with the price.
    Ok,
    /// 503 with an error body (carrying [`SECRET`]).
    Outage,
    /// 200 after [`SLOW`].
    Slow,
}

impl Mode {
    /// Its name in `/fault?mode=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ok => "ok",
            Mode::Outage => "outage",
            Mode::Slow => "slow",
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    mode: AtomicU8,
    requests: AtomicU64,
}

/// A running upstream: its address, its mode, and how many price requests reached it.
#[derive(Debug, Clone)]
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Upstream {
    /// Starts it on an ephemeral loopback port, in the current tokio runtime.
    pub async fn spawn() -> std::io::Result<Upstream> {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/price/{id}", get(price))
            .route("/fault", post(fault))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Upstream { addr, shared })
    }

    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Price requests received so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Deserialize)]
struct FaultQuery {
    mode: Mode,
}

async fn fault(State(shared): State<Arc<Shared>>, Query(query): Query<FaultQuery>) -> StatusCode {
    shared.mode.store(query.mode as u8, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

async fn price(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> (StatusCode, String) {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    match shared.mode.load(Ordering::SeqCst) {
        m if m == Mode::Outage as u8 => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("pricing database unreachable (session {SECRET})"),
        ),
        m => {
            if m == Mode::Slow as u8 {
                tokio::time::sleep(SLOW).await;
            }
            (StatusCode::OK, (100 + id % 900).to_string())
        }
    }
}
