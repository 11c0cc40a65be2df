//! Hedged requests (tail latency): when an attempt has not answered after the *hedge delay*,
//! start another attempt of the same call; the first value wins and the other attempts are
//! dropped (cancelled).
//!
//! This module is the pure part: the [`HedgeConfig`] and how the delay is chosen
//! ([`HedgeConfig::delay`]), from a fixed value or from the dependency's own recent latency
//! (a percentile of its [`HealthWindow`](crate::health::HealthWindow), with a floor). It knows
//! nothing of actix or tokio. The supervisor publishes the delay after each health evaluation;
//! the call's task races the attempts (see [`Call::idempotent`](crate::messages::Call::idempotent)
//! for the rules a hedge obeys).
//!
//! ```
//! use std::time::Duration;
//! use warden::prelude::*;
//!
//! # #[derive(Debug)] struct SearchError;
//! # async fn search(q: &str) -> Result<Vec<String>, SearchError> { Ok(vec![q.to_owned()]) }
//! # #[actix::main(crate = "actix")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let index = ServiceSupervisor::builder("search")
//!     // At the dependency's own p95, at least 1 ms, once 20 latencies are known.
//!     .hedge(HedgeConfig::default())
//!     .start()?;
//! // Only calls marked idempotent are hedged.
//! let hits = index.send(Call::new(|| search("rust")).idempotent()).await;
//! assert_eq!(hits.unwrap(), ["rust"]);
//! // Or a fixed delay, two hedges at most, every call:
//! let fixed = HedgeConfig::fixed(Duration::from_millis(30)).max_hedges(2).all_calls();
//! # let _ = fixed;
//! # Ok(())
//! # }
//! ```
//!
//! # Why a latency-derived delay
//!
//! A fixed delay is right for one load and one dependency; a dependency's latency moves with
//! its load. Hedging at the dependency's own p95 hedges about 5 % of the attempts whatever its
//! latency is, so the extra load stays about 5 % while the slowest 5 % are cut short. When the
//! whole dependency slows down, the percentile follows within one health evaluation and the
//! hedging stops by itself, where a fixed delay would hedge every call (up to the budget).
//!
//! A hedge's loser is recorded in the health window with the time it ran, but at most the
//! delay: a lower bound of its latency. Left out, the slow attempts hedging hides would vanish
//! from the window and the delay would drift down into hedging ever more; recorded with their
//! whole running time (the delay plus the winner's latency), each hedge would add a sample
//! above the current delay and the delay would creep up.

mod config;

pub use config::HedgeConfig;
