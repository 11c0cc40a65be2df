//! [`StatusPage`]: the collector behind the page. An actor subscribed to the registry's events
//! keeps the last breaker transitions of each service; a periodic sample of the registry keeps
//! a bounded history of success rate, p95 and calls per second.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use metrics_exporter_prometheus::PrometheusHandle;

use super::view::{
    unix_ms, HistoryPoint, Readiness, ReadinessEntry, ServiceStatus, StatusView, TransitionView,
};
use crate::actors::RegistryHandle;

/// Keys shown per keyed service on the page.
const TOP_KEYS: usize = 10;
use crate::breaker::Transition;
use crate::error::SupervisorGone;
use crate::health::{HealthSnapshot, HealthStatus};
use crate::messages::{BreakerStatus, CallCounts, EventKind, SupervisorEvent};

/// What the status page keeps and how often it samples.
///
/// Defaults: a sample every 5 s, 60 samples of history (5 minutes), the last 10 transitions
/// of each service, and every service critical for readiness.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusConfig {
    /// How often the registry is sampled into the history; `None` samples only when
    /// [`StatusPage::sample_now`] is called (tests drive it that way). A zero period is taken
    /// as 1 s.
    pub sample_every: Option<Duration>,
    /// Samples kept per service (the history's length; the oldest is dropped first).
    pub history: usize,
    /// Breaker transitions kept per service (the oldest is dropped first).
    pub transitions: usize,
    /// The services whose health decides readiness (`/health`); `None` = every registered
    /// service. A critical service that is not registered makes the program not ready.
    pub critical: Option<BTreeSet<String>>,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            sample_every: Some(Duration::from_secs(5)),
            history: 60,
            transitions: 10,
            critical: None,
        }
    }
}

impl StatusConfig {
    /// Samples every `period`, or only on [`StatusPage::sample_now`] when `None`.
    pub fn sample_every(mut self, period: Option<Duration>) -> Self {
        self.sample_every = period;
        self
    }

    /// Keeps `samples` samples of history per service.
    pub fn history(mut self, samples: usize) -> Self {
        self.history = samples;
        self
    }

    /// Keeps the last `transitions` breaker transitions per service.
    pub fn transitions(mut self, transitions: usize) -> Self {
        self.transitions = transitions;
        self
    }

    /// Only these services decide readiness (`/health`).
    pub fn critical<I, S>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.critical = Some(services.into_iter().map(Into::into).collect());
        self
    }

    /// Whether `service` decides readiness.
    fn is_critical(&self, service: &str) -> bool {
        self.critical
            .as_ref()
            .is_none_or(|critical| critical.contains(service))
    }
}

/// The status of every service of a registry, kept up to date by a collector actor: render it
/// with [`view`](Self::view), [`render_html`](super::render_html) or mount it with
/// [`router`](super::router). Cheap to clone.
#[derive(Debug, Clone)]
pub struct StatusPage {
    inner: Arc<Inner>,
    metrics: Option<PrometheusHandle>,
}

#[derive(Debug)]
struct Inner {
    registry: RegistryHandle,
    config: StatusConfig,
    board: Arc<Mutex<Board>>,
}

/// What the collector remembers, by service name.
#[derive(Debug, Default)]
struct Board {
    services: BTreeMap<String, Record>,
}

#[derive(Debug, Default)]
struct Record {
    /// Oldest first.
    transitions: VecDeque<(SystemTime, Transition)>,
    /// Oldest first.
    history: VecDeque<HistoryPoint>,
    /// The previous sample's total of calls answered, and when it was taken.
    last_total: Option<(tokio::time::Instant, u64)>,
}

fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    // The board is plain data: a panic elsewhere cannot leave it inconsistent.
    board.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the page shows of one service, read live from its supervisor.
#[derive(Debug)]
struct Live {
    health: HealthSnapshot,
    breaker: BreakerStatus,
    counts: CallCounts,
    in_flight: u32,
    limit: u32,
    observing: Vec<&'static str>,
    observed_limit: Option<u32>,
}

impl StatusPage {
    /// Starts the collector for `registry` (on the current arbiter inside an actix system,
    /// otherwise on warden's shared background runtime) and subscribes it to the events of
    /// every service, present and future. Takes a first sample before answering.
    pub async fn start(
        registry: RegistryHandle,
        config: StatusConfig,
    ) -> Result<StatusPage, SupervisorGone> {
        let (page, collector) = Self::launch(registry, config)?;
        page.inner.registry.subscribe(collector.recipient()).await?;
        page.sample_now().await?;
        Ok(page)
    }

    /// [`start`](Self::start) without waiting for the registry: the subscription is queued
    /// (before any service the caller spawns afterwards) and the first sample is left to the
    /// periodic sampling. For callers that must not block on the registry's thread.
    pub(super) fn start_detached(
        registry: RegistryHandle,
        config: StatusConfig,
    ) -> Result<StatusPage, SupervisorGone> {
        let (page, collector) = Self::launch(registry, config)?;
        page.inner
            .registry
            .addr()
            .do_send(crate::messages::Subscribe(collector.recipient().into()));
        Ok(page)
    }

    /// Starts the collector actor.
    fn launch(
        registry: RegistryHandle,
        config: StatusConfig,
    ) -> Result<(StatusPage, Addr<Collector>), SupervisorGone> {
        let inner = Arc::new(Inner {
            registry,
            config,
            board: Arc::new(Mutex::new(Board::default())),
        });
        let collector = Collector {
            page: Arc::downgrade(&inner),
            board: Arc::clone(&inner.board),
            transitions: inner.config.transitions,
            sample_every: inner.config.sample_every,
        };
        let addr = match crate::actors::home_arbiter().map_err(|_| SupervisorGone)? {
            None => collector.start(),
            Some(arbiter) => Collector::start_in_arbiter(&arbiter, |_| collector),
        };
        let page = StatusPage {
            inner,
            metrics: None,
        };
        Ok((page, addr))
    }

    /// Serves `metrics` at `/metrics` of the [`router`](super::router).
    pub fn metrics(mut self, metrics: PrometheusHandle) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The Prometheus handle given to [`metrics`](Self::metrics).
    pub fn metrics_handle(&self) -> Option<&PrometheusHandle> {
        self.metrics.as_ref()
    }

    /// The registry this page reports on.
    pub fn registry(&self) -> &RegistryHandle {
        &self.inner.registry
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &StatusConfig {
        &self.inner.config
    }

    /// Samples every registered service now into its history (calls per second are computed
    /// from the difference of call totals since the previous sample, on tokio's clock, so a
    /// test with a paused clock controls them). Forgets services no longer registered.
    pub async fn sample_now(&self) -> Result<(), SupervisorGone> {
        let live = self.live().await?;
        let now = tokio::time::Instant::now();
        let wall = unix_ms(SystemTime::now());
        let capacity = self.inner.config.history;
        let mut board = lock(&self.inner.board);
        board.services.retain(|name, _| live.contains_key(name));
        for (name, live) in &live {
            let record = board.services.entry(name.clone()).or_default();
            let total = live.counts.total();
            let calls_per_sec = match record.last_total {
                Some((at, previous)) if now > at && total >= previous => {
                    Some((total - previous) as f64 / (now - at).as_secs_f64())
                }
                _ => None,
            };
            record.last_total = Some((now, total));
            record.history.push_back(HistoryPoint {
                at_unix_ms: wall,
                success_rate: live.health.stats.success_rate,
                p95_ms: live.health.stats.p95.map(ms),
                calls_per_sec,
            });
            while record.history.len() > capacity {
                record.history.pop_front();
            }
        }
        Ok(())
    }

    /// The status of every registered service: its live state and counts, plus the history
    /// and transitions collected. This is what `/status.json` answers.
    pub async fn view(&self) -> Result<StatusView, SupervisorGone> {
        let live = self.live().await?;
        let keyed = self.keyed(TOP_KEYS).await?;
        let config = &self.inner.config;
        let board = lock(&self.inner.board);
        let services: Vec<ServiceStatus> = live
            .into_iter()
            .map(|(name, live)| {
                let record = board.services.get(&name);
                let stats = live.health.stats;
                ServiceStatus {
                    critical: config.is_critical(&name),
                    breaker: live.breaker.state,
                    health: live.health.status,
                    retry_after_ms: live.breaker.retry_after.map(|d| d.as_millis() as u64),
                    fleet: live.health.fleet,
                    window_calls: stats.calls,
                    window_failures: stats.failures,
                    success_rate: stats.success_rate,
                    p50_ms: stats.p50.map(ms),
                    p95_ms: stats.p95.map(ms),
                    p99_ms: stats.p99.map(ms),
                    calls_per_sec: record
                        .and_then(|r| r.history.back())
                        .and_then(|point| point.calls_per_sec),
                    in_flight: live.in_flight,
                    limit: live.limit,
                    observing: live.observing,
                    observed_limit: live.observed_limit,
                    totals: live.counts,
                    breaker_window: live.breaker.window,
                    history: record
                        .map(|r| r.history.iter().cloned().collect())
                        .unwrap_or_default(),
                    transitions: record
                        .map(|r| {
                            r.transitions
                                .iter()
                                .rev()
                                .map(|(at, t)| TransitionView::new(*at, t))
                                .collect()
                        })
                        .unwrap_or_default(),
                    name,
                }
            })
            .collect();
        let statuses: Vec<_> = services.iter().map(|s| (&*s.name, s.health)).collect();
        let (ready, _) = readiness_of(config, &statuses);
        Ok(StatusView {
            generated_at_unix_ms: unix_ms(SystemTime::now()),
            sample_every_ms: config.sample_every.map(|d| d.as_millis() as u64),
            history_len: config.history,
            ready,
            services,
            keyed,
        })
    }

    /// Every keyed service, with its `top` keys.
    async fn keyed(&self, top: usize) -> Result<Vec<crate::actors::KeyedSnapshot>, SupervisorGone> {
        let keyed = self.inner.registry.keyed_all().await?;
        Ok(keyed.iter().map(|service| service.snapshot(top)).collect())
    }

    /// The per-key series of every keyed service (see
    /// [`render_key_series`](crate::actors::render_key_series)).
    pub(super) async fn key_series(&self) -> Result<String, SupervisorGone> {
        let keyed = self.inner.registry.keyed_all().await?;
        Ok(crate::actors::render_key_series(&keyed))
    }

    /// Readiness (what `/health` answers): ready while every critical service is healthy or
    /// degraded, not ready when one is unhealthy or not registered.
    pub async fn readiness(&self) -> Result<Readiness, SupervisorGone> {
        let config = &self.inner.config;
        let all = self.inner.registry.health_all().await?;
        let statuses: Vec<_> = all.iter().map(|h| (&*h.service, h.status)).collect();
        let (ready, missing) = readiness_of(config, &statuses);
        Ok(Readiness {
            ready,
            missing,
            services: all
                .into_iter()
                .map(|health| ReadinessEntry {
                    critical: config.is_critical(&health.service),
                    health,
                })
                .collect(),
            keyed: self.keyed(0).await?,
        })
    }

    /// Reads every registered service from its supervisor; a service whose supervisor stops
    /// meanwhile is left out.
    async fn live(&self) -> Result<BTreeMap<String, Live>, SupervisorGone> {
        let registry = &self.inner.registry;
        let mut all = BTreeMap::new();
        for name in registry.list().await? {
            let Some(handle) = registry.get(&name).await? else {
                continue;
            };
            let (Ok(health), Ok(breaker), Ok(counts)) = (
                handle.health().await,
                handle.breaker_status().await,
                handle.counts().await,
            ) else {
                continue;
            };
            all.insert(
                name,
                Live {
                    health,
                    breaker,
                    counts,
                    in_flight: handle.in_flight(),
                    limit: handle.limit(),
                    observing: handle.observing(),
                    observed_limit: handle.observed_limit(),
                },
            );
        }
        Ok(all)
    }
}

/// Readiness of `services` (name, status): false when a critical one is unhealthy or is not
/// among them; with the critical services that are not.
fn readiness_of(config: &StatusConfig, services: &[(&str, HealthStatus)]) -> (bool, Vec<String>) {
    let unhealthy = services
        .iter()
        .any(|(name, status)| config.is_critical(name) && status.is_unhealthy());
    let missing: Vec<String> = config
        .critical
        .iter()
        .flatten()
        .filter(|name| !services.iter().any(|(present, _)| present == name))
        .cloned()
        .collect();
    (!unhealthy && missing.is_empty(), missing)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The actor subscribed to the registry: records transitions, and samples periodically.
struct Collector {
    /// Weak: the collector must not keep the page (and its registry) alive.
    page: Weak<Inner>,
    board: Arc<Mutex<Board>>,
    transitions: usize,
    sample_every: Option<Duration>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").finish_non_exhaustive()
    }
}

impl Actor for Collector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(period) = self.sample_every else {
            return;
        };
        let period = if period.is_zero() {
            Duration::from_secs(1)
        } else {
            period
        };
        ctx.run_interval(period, |collector, ctx| {
            let Some(inner) = collector.page.upgrade() else {
                ctx.stop(); // every page is gone: nobody will read what we collect
                return;
            };
            let page = StatusPage {
                inner,
                metrics: None,
            };
            // Its own task: the queries take a few round trips, and the interval stays regular.
            actix::spawn(async move {
                let _ = page.sample_now().await;
            });
        });
    }
}

impl Handler<SupervisorEvent> for Collector {
    type Result = ();

    fn handle(&mut self, event: SupervisorEvent, ctx: &mut Context<Self>) {
        if self.page.strong_count() == 0 {
            ctx.stop();
            return;
        }
        // Only transitions are kept: they carry an enum reason and the window's counts, never
        // an operation's error.
        let EventKind::StateChanged(transition) = event.kind else {
            return;
        };
        let mut board = lock(&self.board);
        let record = board.services.entry(event.service.to_string()).or_default();
        record
            .transitions
            .push_back((SystemTime::now(), transition));
        while record.transitions.len() > self.transitions {
            record.transitions.pop_front();
        }
    }
}
