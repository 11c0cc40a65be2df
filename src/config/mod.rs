//! [`SupervisorConfig`]: everything one supervisor needs, built in code or loaded from TOML,
//! validated before use, with presets for common kinds of dependency.
//!
//! ```
//! use warden::SupervisorConfig;
//!
//! let file: warden::ServicesFile = toml::from_str(r#"
//!     [services.database]
//!     timeout = "2s"
//!     max_in_flight = 32
//!     [services.database.breaker]
//!     consecutive_failures = 3
//!     open_duration = { base = "30s", max = "5m", multiplier = 2.0, jitter = 0.1 }
//! "#).unwrap();
//! file.validate().unwrap();
//! assert_eq!(file.services["database"].max_in_flight, 32);
//! ```

mod file;
mod presets;
mod supervisor;
mod validate;

pub use file::ServicesFile;
pub use supervisor::SupervisorConfig;
pub(crate) use validate::check_faults;
pub use validate::validate_service_name;
