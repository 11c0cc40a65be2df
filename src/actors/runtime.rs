//! [`BackgroundRuntime`]: an actix system on its own threads, for programs that run on plain
//! tokio (axum, tonic, reqwest) rather than inside an actix `System`.

use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;

use actix::{Arbiter, ArbiterHandle, System};

/// An actix system running on background threads: one thread per arbiter. Start supervisors on
/// it with [`SupervisorBuilder::start_in_arbiter`](crate::SupervisorBuilder::start_in_arbiter);
/// the returned handles are `Send + Sync + Clone` and awaitable from any runtime.
///
/// Each call from another runtime crosses threads (a wake-up on each side); see the README's
/// benchmark section for what that costs.
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
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl BackgroundRuntime {
    /// Starts a system with `arbiters` arbiter threads (at least one: the system's own).
    pub fn start(arbiters: usize) -> io::Result<Self> {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("warden-system".into())
            .spawn(move || {
                let system = System::new();
                let mut handles = vec![Arbiter::current()];
                // Extra arbiters register with the system, which stops them when it stops.
                handles.extend((1..arbiters.max(1)).map(|_| Arbiter::new().handle()));
                // The receiver waits for this; if it is gone there is nobody to tell.
                let _ = sender.send((System::current(), handles));
                system.run()
            })?;
        let (system, arbiters) = receiver
            .recv()
            .map_err(|_| io::Error::other("actix system thread exited during start"))?;
        Ok(BackgroundRuntime {
            system,
            arbiters,
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

    /// Stops every arbiter and the system, and waits for the threads to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            // A panic on the system thread was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}
