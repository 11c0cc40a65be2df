//! Where supervisors live: the current arbiter inside an actix system, or else a
//! [`BackgroundRuntime`] — an actix system on its own threads — for programs that run on plain
//! tokio (axum, tonic, reqwest). Calls never run there: they run in the caller's task.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread::JoinHandle;

use actix::{Arbiter, ArbiterHandle, System};

/// The shared background runtime, started on first use by a supervisor or registry started
/// outside an actix system.
static SHARED: OnceLock<BackgroundRuntime> = OnceLock::new();
/// Arbiters the shared runtime will have, if set before it starts.
static SHARED_ARBITERS: Mutex<Option<usize>> = Mutex::new(None);
/// Round-robin position over the shared runtime's arbiters.
static NEXT_ARBITER: AtomicUsize = AtomicUsize::new(0);

/// Where a supervisor or registry started with `start()` lives: `None` for the current arbiter
/// (inside an actix system: started there directly), otherwise one of the
/// [shared](BackgroundRuntime::shared) background runtime's arbiters, round-robin.
pub(crate) fn home_arbiter() -> io::Result<Option<ArbiterHandle>> {
    if Arbiter::try_current().is_some() {
        return Ok(None);
    }
    let shared = BackgroundRuntime::shared()?;
    let index = NEXT_ARBITER.fetch_add(1, Ordering::Relaxed);
    Ok(Some(shared.arbiter(index).clone()))
}

/// An actix system running on background threads: one thread per arbiter. Supervisors live
/// there when the program does not run inside an actix system; the handles are
/// `Send + Sync + Clone` and awaitable from any runtime, and calls run in the caller's task, so
/// no call crosses to these threads unless an attempt fails or the breaker is half-open.
///
/// You rarely need one yourself: `ServiceSupervisor::builder(..).start()` and
/// [`RegistryHandle::start`](crate::RegistryHandle::start) outside an actix system use the
/// [shared](Self::shared) one, started on first use. Start your own to choose the threads, and
/// place supervisors with
/// [`SupervisorBuilder::start_in_arbiter`](crate::SupervisorBuilder::start_in_arbiter).
///
/// ```
/// use warden::actors::BackgroundRuntime;
/// use warden::ServiceSupervisor;
///
/// let runtime = BackgroundRuntime::start(1).unwrap();
/// let cache = ServiceSupervisor::builder("cache")
///     .start_in_arbiter(runtime.arbiter(0))
///     .unwrap();
/// let plain_tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// let value: Result<u8, warden::CallError<()>> =
///     plain_tokio.block_on(cache.call(|| async { Ok(7) }));
/// assert_eq!(value.unwrap(), 7);
/// runtime.stop();
/// ```
#[derive(Debug)]
pub struct BackgroundRuntime {
    system: System,
    arbiters: Vec<ArbiterHandle>,
    /// The extra arbiters' threads, joined on stop.
    extra: Vec<Arbiter>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BackgroundRuntime {
    /// The background runtime shared by every supervisor and registry started outside an actix
    /// system, started on first use with one arbiter thread (or as many as
    /// [`set_shared_arbiters`](Self::set_shared_arbiters) asked for). It runs until the
    /// process ends. Only the supervisors' decisions run there (failed attempts, probes,
    /// batches of outcomes, queries), so one thread serves many dependencies.
    ///
    /// Fails only if the operating system cannot start a thread.
    pub fn shared() -> io::Result<&'static BackgroundRuntime> {
        if let Some(shared) = SHARED.get() {
            return Ok(shared);
        }
        let mut arbiters = SHARED_ARBITERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(shared) = SHARED.get() {
            return Ok(shared);
        }
        let runtime = BackgroundRuntime::start(arbiters.take().unwrap_or(1))?;
        Ok(SHARED.get_or_init(|| runtime))
    }

    /// Sets how many arbiter threads the [shared](Self::shared) runtime starts with. Returns
    /// false (and changes nothing) once it has started.
    pub fn set_shared_arbiters(arbiters: usize) -> bool {
        let mut pending = SHARED_ARBITERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if SHARED.get().is_some() {
            return false;
        }
        *pending = Some(arbiters.max(1));
        true
    }

    /// Starts a system with `arbiters` arbiter threads (at least one: the system's own).
    pub fn start(arbiters: usize) -> io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("warden-system".into())
            .spawn(move || {
                let system = System::new();
                // Extra arbiters register with the system, which stops them when it stops.
                let extra: Vec<Arbiter> = (1..arbiters.max(1)).map(|_| Arbiter::new()).collect();
                let mut handles = vec![Arbiter::current()];
                handles.extend(extra.iter().map(Arbiter::handle));
                // The receiver waits for this; if it is gone there is nobody to tell.
                let _ = sender.send((System::current(), handles, extra));
                system.run()
            })?;
        let (system, arbiters, extra) = receiver
            .recv()
            .map_err(|_| io::Error::other("actix system thread exited during start"))?;
        Ok(BackgroundRuntime {
            system,
            arbiters,
            extra,
            thread: Some(thread),
        })
    }

    /// Arbiter `index` (0 = the system's own); wraps around past the last one, so
    /// `arbiter(i)` spreads supervisors round-robin.
    pub fn arbiter(&self, index: usize) -> &ArbiterHandle {
        &self.arbiters[index % self.arbiters.len()]
    }

    /// Number of arbiters.
    pub fn arbiter_count(&self) -> usize {
        self.arbiters.len()
    }

    /// Stops every arbiter and the system, and waits for the threads to end (so every
    /// supervisor on them is gone when this returns).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            // A panic on the system thread was already reported by the panic hook.
            let _ = thread.join();
        }
        for arbiter in self.extra.drain(..) {
            arbiter.stop();
            // Likewise for a panic on an arbiter's thread.
            let _ = arbiter.join();
        }
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}
