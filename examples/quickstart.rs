//! The first program: one supervisor, a flaky operation, a call with a classifier and a
//! fallback, and the dependency's health. `cargo run --example quickstart`
use std::time::Duration;

use warden::prelude::*;

#[derive(Debug)]
enum ApiError {
    Unavailable, // 503: worth retrying
    NotFound,    // 404: the request was wrong, not the dependency
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = ServiceSupervisor::builder("prices-api")
        .timeout(Duration::from_millis(200))
        .retry(RetryConfig::exponential(3, Duration::from_millis(20)).full_jitter())
        .breaker(BreakerConfig::consecutive(3).open_for(Duration::from_secs(10)))
        .start()?;

    // (fruit, how many times the API fails before answering): "kiwi" is not in its catalogue.
    for (fruit, failures) in [("apple", 0), ("pear", 1), ("kiwi", 0), ("plum", 5)] {
        let mut calls = 0;
        let call = Call::new(move || {
            calls += 1;
            let answer = match fruit {
                "kiwi" => Err(ApiError::NotFound),
                _ if calls <= failures => Err(ApiError::Unavailable),
                _ => Ok(42.0),
            };
            async move { answer }
        })
        .classify(|error| match error {
            ApiError::Unavailable => ErrorClass::transient(),
            ApiError::NotFound => ErrorClass::ignored(),
        })
        .fallback(|error| match error {
            CallError::Open { .. } | CallError::RetriesExhausted { .. } => Ok(40.0), // cached
            other => Err(other),
        });
        println!("{fruit}: {:?}", api.send(call).await);
    }

    let health = api.health().await?;
    println!(
        "{} is {}, breaker {}",
        health.service, health.status, health.breaker
    );
    Ok(())
}
