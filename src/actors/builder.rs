//! [`SupervisorBuilder`]: configure and start a [`ServiceSupervisor`].

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ArbiterHandle, Context};

use super::handle::ServiceHandle;
use super::shared::member::KeyShare;
use super::shared::settings::CallSettings;
use super::shared::Published;
use super::supervisor::fleet::FleetLink;
use super::supervisor::ServiceSupervisor;
use crate::breaker::BreakerConfig;
use crate::config::{validate_service_name, SupervisorConfig};
use crate::error::ConfigError;
use crate::fleet::{FleetConfig, FleetStore};
use crate::health::HealthConfig;
use crate::observe::ServiceMetrics;
use crate::retry::RetryConfig;

/// Builds and starts a [`ServiceSupervisor`]. Every setter has the default of
/// [`SupervisorConfig`]; [`start`](Self::start) validates and never panics on bad values.
///
/// ```
/// use std::time::Duration;
/// use warden::prelude::*;
///
/// # #[actix::main(crate = "actix")]
/// # async fn main() {
/// let db = ServiceSupervisor::builder("database")
///     .config(SupervisorConfig::database())
///     .timeout(Duration::from_secs(2))
///     .retry(RetryConfig::exponential(3, Duration::from_millis(100)).full_jitter())
///     .breaker(BreakerConfig::consecutive(3).open_for(Duration::from_secs(30)))
///     .start()
///     .expect("valid configuration");
/// let rows: Result<u32, CallError<std::io::Error>> = db.call(|| async { Ok(42) }).await;
/// assert_eq!(rows.unwrap(), 42);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SupervisorBuilder {
    name: String,
    config: SupervisorConfig,
    /// Set for one key of a keyed service.
    member: Option<Member>,
    /// The fleet's store, when given in code rather than by URL.
    fleet_store: Option<Arc<dyn FleetStore>>,
}

/// What makes a supervisor one key of a keyed service.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// The keyed service's name: the `service` label its counts add up under.
    pub(crate) service: Arc<str>,
    /// The keyed service's open-key count.
    pub(crate) share: Arc<KeyShare>,
}

impl ServiceSupervisor {
    /// A builder for the supervisor of the dependency `name`.
    pub fn builder(name: impl Into<String>) -> SupervisorBuilder {
        SupervisorBuilder::new(name)
    }
}

impl SupervisorBuilder {
    /// A builder for `name` with the default configuration.
    pub fn new(name: impl Into<String>) -> Self {
        SupervisorBuilder {
            name: name.into(),
            config: SupervisorConfig::default(),
            member: None,
            fleet_store: None,
        }
    }

    /// Makes the supervisor one key of a keyed service.
    pub(crate) fn member(mut self, member: Member) -> Self {
        self.member = Some(member);
        self
    }

    /// Replaces the whole configuration (e.g. a preset or one loaded from TOML).
    pub fn config(mut self, config: SupervisorConfig) -> Self {
        self.config = config;
        self
    }

    /// Per-attempt timeout; `None` turns it off (a deadline, if set, still applies).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.timeout = timeout.into();
        self
    }

    /// Overall deadline across all attempts and retry delays; `None` turns it off.
    pub fn deadline(mut self, deadline: impl Into<Option<Duration>>) -> Self {
        self.config.deadline = deadline.into();
        self
    }

    /// Retry policy.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.config.retry = retry;
        self
    }

    /// Circuit breaker policy.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.config.breaker = breaker;
        self
    }

    /// Health window and thresholds.
    pub fn health(mut self, health: HealthConfig) -> Self {
        self.config.health = health;
        self
    }

    /// Client-side adaptive throttling (see [`SupervisorConfig::throttle`]).
    pub fn throttle(mut self, throttle: crate::throttle::ThrottleConfig) -> Self {
        self.config.throttle = Some(throttle);
        self
    }

    /// An adaptive concurrency limit (see [`SupervisorConfig::concurrency_limit`]).
    pub fn concurrency_limit(mut self, limit: crate::limit::ConcurrencyLimitConfig) -> Self {
        self.config.concurrency_limit = Some(limit);
        self
    }

    /// A token-bucket rate limit (see [`SupervisorConfig::rate_limit`]).
    pub fn rate_limit(mut self, limit: crate::ratelimit::RateLimitConfig) -> Self {
        self.config.rate_limit = Some(limit);
        self
    }

    /// Shares of each capacity kept for more critical calls (see
    /// [`SupervisorConfig::criticality`]).
    pub fn criticality(mut self, criticality: crate::criticality::CriticalityConfig) -> Self {
        self.config.criticality = Some(criticality);
        self
    }

    /// Hedged requests for idempotent calls (see [`SupervisorConfig::hedge`] and
    /// [`Call::idempotent`](crate::messages::Call::idempotent)).
    pub fn hedge(mut self, hedge: crate::hedge::HedgeConfig) -> Self {
        self.config.hedge = Some(hedge);
        self
    }

    /// Faults to inject into the attempts on purpose (see [`SupervisorConfig::faults`]); `start`
    /// refuses them unless the cargo feature `fault-injection` is on.
    pub fn faults(mut self, faults: crate::chaos::FaultConfig) -> Self {
        self.config.faults = Some(faults);
        self
    }

    /// Makes the service one replica of a [fleet](crate::fleet) (see
    /// [`SupervisorConfig::fleet`]): its rate limit and retry budget shared through the store
    /// `fleet.redis` names, or the one given with [`fleet_store`](Self::fleet_store).
    pub fn fleet(mut self, fleet: FleetConfig) -> Self {
        self.config.fleet = Some(fleet);
        self
    }

    /// The fleet's store, given in code (a [`MemoryStore`](crate::fleet::MemoryStore) shared by
    /// the supervisors of one process, or a store of your own); it takes the place of the
    /// configuration's `fleet.redis`. Needs a [`fleet`](Self::fleet) configuration.
    pub fn fleet_store(mut self, store: Arc<dyn FleetStore>) -> Self {
        self.fleet_store = Some(store);
        self
    }

    /// Bulkhead: calls in flight allowed at once.
    pub fn max_in_flight(mut self, max: u32) -> Self {
        self.config.max_in_flight = max;
        self
    }

    /// Mailbox capacity.
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.config.mailbox_capacity = capacity;
        self
    }

    /// Seed of the jitter RNG, for reproducible delays.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// The configuration as built so far.
    pub fn current_config(&self) -> &SupervisorConfig {
        &self.config
    }

    /// Validates the name and configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_service_name(&self.name)?;
        self.config.validate()
    }

    /// Starts the supervisor: on the current arbiter inside an actix system, otherwise (plain
    /// tokio, or no runtime at all) on the [shared background
    /// runtime](crate::actors::BackgroundRuntime::shared), started on first use. Either way
    /// calls run in the caller's task.
    ///
    /// Fails with the [`ConfigError`] of an invalid configuration, or
    /// [`ConfigError::Runtime`] if the background runtime's thread could not be started.
    pub fn start(self) -> Result<ServiceHandle, ConfigError> {
        let (supervisor, handle_parts) = self.prepare()?;
        let arbiter = super::runtime::home_arbiter().map_err(|error| ConfigError::Runtime {
            message: error.to_string(),
        })?;
        // On the current arbiter, started directly: no closure crosses its spawn channel (at
        // 100 000 supervisors that transient copy was ≈ 0.6 KiB each of RSS).
        let addr = match arbiter {
            None => supervisor.start(),
            Some(arbiter) => {
                ServiceSupervisor::start_in_arbiter(&arbiter, move |_: &mut Context<_>| supervisor)
            }
        };
        Ok(handle_parts.with(addr))
    }

    /// Starts the supervisor on `arbiter` (e.g. a dedicated thread, or one of a
    /// [`BackgroundRuntime`](crate::actors::BackgroundRuntime)'s arbiters).
    pub fn start_in_arbiter(self, arbiter: &ArbiterHandle) -> Result<ServiceHandle, ConfigError> {
        let (supervisor, handle_parts) = self.prepare()?;
        let addr =
            ServiceSupervisor::start_in_arbiter(arbiter, move |_: &mut Context<_>| supervisor);
        Ok(handle_parts.with(addr))
    }

    fn prepare(self) -> Result<(ServiceSupervisor, HandleParts), ConfigError> {
        if self.member.is_none() {
            // A keyed service's configuration was validated once, when it was spawned.
            self.validate()?;
        }
        let name: Arc<str> = Arc::from(self.name);
        let settings = CallSettings::of(&self.config);
        let metrics = match &self.member {
            Some(member) => ServiceMetrics::register_member(&member.service),
            None => ServiceMetrics::register(&name),
        };
        let fleet = match &self.config.fleet {
            Some(fleet) => Some(FleetLink::new(
                &name,
                fleet.clone(),
                fleet_store(fleet, self.fleet_store)?,
            )),
            None => None,
        };
        let published = Published::new(metrics, self.config.initial_limit(), settings);
        published.reserves.publish(self.config.criticality.as_ref());
        match (&self.config.rate_limit, &self.config.fleet) {
            (Some(limit), Some(fleet)) if fleet.quota => {
                // Seeded like the supervisor's other generators when a seed is given, mixed
                // with the name: replicas configured alike must not jitter alike.
                let seed = self.config.seed.map_or_else(rand::random, |seed| {
                    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                    })
                });
                published.rate_limit.set_fleet(limit.clone(), fleet, seed);
            }
            (limit, _) => published.rate_limit.set(limit.clone()),
        }
        let published = Arc::new(published);
        let (alive, alive_watch) = tokio::sync::watch::channel(());
        let supervisor = ServiceSupervisor::new(
            Arc::clone(&name),
            self.config,
            Arc::clone(&published),
            alive,
            self.member.map(|member| member.share),
            fleet,
        );
        Ok((
            supervisor,
            HandleParts {
                name,
                published,
                alive_watch,
            },
        ))
    }
}

/// The store of `fleet`: the one given in code, else the Redis server it names.
fn fleet_store(
    fleet: &FleetConfig,
    given: Option<Arc<dyn FleetStore>>,
) -> Result<Arc<dyn FleetStore>, ConfigError> {
    if let Some(store) = given {
        return Ok(store);
    }
    if fleet.redis.is_empty() {
        return Err(ConfigError::invalid(
            "fleet.redis",
            "a fleet needs a store: a redis url, or one given with `SupervisorBuilder::fleet_store`",
        ));
    }
    redis_store(fleet)
}

#[cfg(feature = "redis")]
fn redis_store(fleet: &FleetConfig) -> Result<Arc<dyn FleetStore>, ConfigError> {
    crate::fleet::RedisStore::shared(&fleet.redis, fleet.timeout)
        .map(|store| Arc::new(store) as Arc<dyn FleetStore>)
        .map_err(|e| ConfigError::invalid("fleet.redis", e.message))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_: &FleetConfig) -> Result<Arc<dyn FleetStore>, ConfigError> {
    Err(ConfigError::invalid(
        "fleet.redis",
        "needs the cargo feature `redis` (warden was built without it)",
    ))
}

struct HandleParts {
    name: Arc<str>,
    published: Arc<Published>,
    alive_watch: tokio::sync::watch::Receiver<()>,
}

impl HandleParts {
    fn with(self, addr: actix::Addr<ServiceSupervisor>) -> ServiceHandle {
        self.published
            .set_supervisor(addr.clone().recipient().downgrade());
        ServiceHandle::new(self.name, addr, self.published, self.alive_watch)
    }
}
