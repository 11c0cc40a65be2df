//! The registry: spawn by name, look up, list, health of all, duplicates refused, arbiters.

use crate::common;

use common::*;
use warden::actors::RegistryError;
use warden::prelude::*;

#[actix::test]
async fn spawn_lookup_list_and_health_of_all() {
    pause_aligned().await;
    let registry = warden::RegistryHandle::start().unwrap();
    let db = registry
        .spawn("database", SupervisorConfig::database())
        .await
        .unwrap();
    registry
        .spawn("cache", SupervisorConfig::cache())
        .await
        .unwrap();
    registry
        .spawn("external_api", SupervisorConfig::http_api())
        .await
        .unwrap();

    assert_eq!(
        registry.list().await.unwrap(),
        ["cache", "database", "external_api"]
    );
    let found = registry.get("database").await.unwrap().expect("registered");
    assert_eq!(found.name(), "database");
    assert!(registry.get("nope").await.unwrap().is_none());

    succeed(&found).await.unwrap();
    assert_eq!(db.counts().await.unwrap().success, 1, "same supervisor");

    let health = registry.health_of("external_api").await.unwrap().unwrap();
    assert_eq!(health.service, "external_api");
    assert!(health.is_healthy());
    let all = registry.health_all().await.unwrap();
    let names: Vec<_> = all.iter().map(|h| h.service.as_str()).collect();
    assert_eq!(names, ["cache", "database", "external_api"]);
}

#[actix::test]
async fn duplicate_and_invalid_names_are_refused() {
    let registry = warden::RegistryHandle::start().unwrap();
    registry
        .spawn("db", SupervisorConfig::default())
        .await
        .unwrap();
    let err = registry
        .spawn("db", SupervisorConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::AlreadyRegistered { name } if name == "db"),
        "{err}"
    );
    let err = registry
        .spawn("", SupervisorConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Config(e) if e.field() == Some("name")),
        "{err}"
    );
    let bad = SupervisorConfig {
        max_in_flight: 0,
        ..SupervisorConfig::default()
    };
    let err = registry.spawn("x", bad).await.unwrap_err();
    assert!(matches!(&err, RegistryError::Config(e) if e.field() == Some("max_in_flight")));
    assert_eq!(registry.list().await.unwrap(), ["db"]);
}

#[actix::test]
async fn spawns_every_service_of_a_toml_file() {
    let registry = warden::RegistryHandle::start().unwrap();
    let file = ServicesFile::from_toml_str(
        r#"
        [services.orders_db]
        timeout = "2s"
        [services.payments_api]
        deadline = "20s"
        "#,
    )
    .unwrap();
    let handles = registry.spawn_all(file).await.unwrap();
    assert_eq!(handles.len(), 2);
    assert_eq!(
        registry.list().await.unwrap(),
        ["orders_db", "payments_api"]
    );
}

#[test]
fn supervisors_start_on_a_chosen_arbiter_and_serve_a_plain_tokio_caller() {
    let runtime = warden::actors::BackgroundRuntime::start(2).unwrap();
    let handle = ServiceSupervisor::builder("remote")
        .config(plain_config())
        .start_in_arbiter(runtime.arbiter(1))
        .unwrap();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let thread_of_call = tokio_rt
        .block_on(handle.call(|| async {
            Ok::<_, DepError>(std::thread::current().name().map(str::to_owned))
        }));
    // A handle's call runs in the caller's task: no hop to the arbiter's thread.
    let caller = std::thread::current().name().map(str::to_owned);
    assert_eq!(thread_of_call.unwrap(), caller);
    // A `Call` sent to the supervisor's address runs on its arbiter.
    let thread_of_message = tokio_rt
        .block_on(handle.addr().send(Call::new(|| async {
            Ok::<_, DepError>(std::thread::current().name().map(str::to_owned))
        })))
        .unwrap();
    assert_ne!(thread_of_message.unwrap(), caller);
    runtime.stop();
    // Once the system is gone, calls answer SupervisorGone instead of hanging.
    let after = tokio_rt.block_on(succeed(&handle));
    assert!(matches!(after, Err(CallError::SupervisorGone)), "{after:?}");
}
