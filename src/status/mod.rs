//! A live status page, served by warden itself: one row per dependency with its breaker state
//! and health (colour **and** text), success rate, p50/p95/p99, calls per second, calls in
//! flight and the limit, a 5-minute history as inline SVG sparklines, and the last breaker
//! transitions with their reason and the window that caused them. Cargo feature `status-page`
//! (on by default).
//!
//! - [`StatusPage::start`] subscribes a small collector actor to a
//!   [`RegistryHandle`](crate::actors::RegistryHandle)'s events (it keeps the last transitions of each service) and samples
//!   the registry every few seconds into a bounded ring (history of success rate, p95 and
//!   calls/s). Memory is bounded: `services × (history + transitions)` small records. Services
//!   added later appear; removed ones disappear at the next sample.
//! - [`router`] mounts it as an axum [`Router`](axum::Router): `GET /status` (one
//!   self-contained HTML page), `GET /status.json`, `GET /health` (readiness) and
//!   `GET /metrics` (Prometheus text).
//! - [`serve`] installs the Prometheus recorder and serves all four on
//!   its own thread, loopback by default, next to (instead of) [`serve_metrics`](crate::observe::serve_metrics).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use warden::status::{self, StatusConfig, StatusPage};
//!
//! let metrics = warden::observe::install_recorder()?;
//! let registry = warden::RegistryHandle::start()?;
//! let page = StatusPage::start(registry.clone(), StatusConfig::default())
//!     .await?
//!     .metrics(metrics);
//! let app: axum::Router = status::router(page); // merge it into your own router
//! # let _ = app; Ok(()) }
//! ```
//!
//! # The page
//!
//! The HTML is rendered on the server (a `<table>` is the primary presentation, so the page is
//! complete with scripts disabled) and a small embedded script polls `/status.json` every 2 s
//! and redraws it, setting `data-updated` on `<body>` after each refresh. Everything is
//! embedded — CSS, script, SVG — so the page works offline; its `Content-Security-Policy`
//! forbids loading anything from elsewhere.
//!
//! # Security
//!
//! Every route is read-only: nothing here can force, reset or reconfigure a breaker. The page
//! shows only states, counts, rates, latencies, limits and the breaker's reasons (an enum and
//! the window's counts): never an operation's error text nor any per-request value, which can
//! carry credentials or personal data (the collector never sees them: it reads the
//! supervisors' counts and events, which hold none). [`serve`] binds
//! where it is told, loopback by default; mount [`router`] behind your own authentication
//! before exposing it further.
//!
//! # Why axum
//!
//! The routes are meant to be merged into the axum services that most Rust HTTP programs
//! already are, so the page is an axum `Router`. axum is pulled with its default features off
//! (`tokio`, `http1`, `json` only): on top of hyper, which the exporter already needs, it adds
//! routing and little else. Serving it with hyper directly would save one crate and cost a
//! hand-written router, with no way to mount it in an axum app.

mod collector;
mod html;
mod routes;
mod serve;
mod view;

pub use collector::{StatusConfig, StatusPage};
pub use html::render_html;
pub use routes::router;
pub use serve::{serve, serve_with, ObserveHandle};
pub use view::{
    HistoryPoint, Readiness, ReadinessEntry, ServiceStatus, StatusView, TransitionView,
};
