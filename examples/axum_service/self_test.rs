//! `--self-test`: drives traffic and faults against the running service over real HTTP and
//! checks every answer; the first failed check ends the run with its message.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::upstream::{Mode, Upstream, SECRET};

/// An HTTP client for the service and for the upstream's fault switch.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    upstream: Upstream,
}

impl Client {
    pub fn new(addr: SocketAddr, upstream: &Upstream) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Client {
            http,
            base: format!("http://{addr}"),
            upstream: upstream.clone(),
        }
    }

    /// `GET path` on the service: status and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status().as_u16();
        Ok((
            status,
            response
                .text()
                .await
                .map_err(|e| format!("GET {path}: {e}"))?,
        ))
    }

    async fn json(&self, path: &str) -> Result<(u16, Value), String> {
        let (status, body) = self.get(path).await?;
        let json = serde_json::from_str(&body)
            .map_err(|e| format!("GET {path}: not JSON ({e}): {body}"))?;
        Ok((status, json))
    }

    /// Switches the upstream's mode.
    pub async fn fault(&self, mode: Mode) -> Result<(), String> {
        let url = format!("{}/fault?mode={}", self.upstream.url(), mode.as_str());
        self.http
            .post(url)
            .send()
            .await
            .map_err(|e| format!("fault: {e}"))?;
        Ok(())
    }

    /// Caches quote 1, then puts the upstream in an outage and calls until its breaker opens.
    pub async fn trip_upstream(&self) -> Result<(), String> {
        self.get("/quote/1").await?;
        self.fault(Mode::Outage).await?;
        wait_for(
            "the upstream's breaker opens",
            Duration::from_secs(5),
            || async {
                self.get("/quote/1").await?;
                Ok(self.breaker("upstream").await? == "open")
            },
        )
        .await
    }

    /// The breaker state of `service`, from `/status.json`.
    async fn breaker(&self, service: &str) -> Result<String, String> {
        let (_, json) = self.json("/status.json").await?;
        let services = json["services"].as_array().cloned().unwrap_or_default();
        let found = services
            .iter()
            .find(|s| s["name"] == service)
            .ok_or(format!("{service} missing from /status.json"))?;
        Ok(found["breaker"].as_str().unwrap_or_default().to_string())
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        println!("  ok  {what}");
        Ok(())
    } else {
        Err(format!("self-test failed: {what}"))
    }
}

/// Calls `probe` until it answers true, at most for `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut probe: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe().await? {
            return check(
                true,
                &format!("{what} (after {:.1} s)", start.elapsed().as_secs_f64()),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check(false, &format!("{what} within {limit:?}"))
}

pub async fn run(addr: SocketAddr, upstream: &Upstream) -> Result<(), String> {
    let client = Client::new(addr, upstream);
    println!("self-test against http://{addr}");

    // 1. Healthy: answers come from the upstream; every route answers.
    let (status, quote) = client.json("/quote/1").await?;
    check(
        status == 200 && quote["source"] == "upstream",
        "GET /quote/1 is 200 from the upstream",
    )?;
    let (status, health) = client.json("/health").await?;
    check(
        status == 200 && health["ready"] == true,
        "/health is 200 while every dependency is healthy",
    )?;
    check(client.get("/livez").await?.0 == 200, "/livez is 200")?;
    let (status, metrics) = client.get("/metrics").await?;
    check(
        status == 200 && metrics.contains("warden_calls_total"),
        "/metrics is Prometheus text",
    )?;

    // 2. Slow upstream: the attempt times out and the cached price answers.
    client.fault(Mode::Slow).await?;
    let started = Instant::now();
    let (status, quote) = client.json("/quote/1").await?;
    check(
        status == 200 && quote["source"] == "cache" && started.elapsed() < Duration::from_secs(2),
        "a slow upstream times out and the store's price answers",
    )?;
    client.fault(Mode::Ok).await?;
    for id in 1..=20 {
        client.get(&format!("/quote/{}", id % 3)).await?; // the slow call's failure ages out
    }

    // 3. Outage: the breaker opens; cached quotes are served, others refused; not ready.
    client.trip_upstream().await?;
    let before = upstream.requests();
    let (status, quote) = client.json("/quote/1").await?;
    check(
        status == 200 && quote["source"] == "cache",
        "while open, a cached quote is served by the fallback",
    )?;
    let (status, body) = client.json("/quote/777").await?;
    check(
        status == 503
            && body["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
        "while open, an uncached quote is refused with 503",
    )?;
    check(
        upstream.requests() == before,
        "while open, no request reaches the upstream",
    )?;
    let (status, health) = client.json("/health").await?;
    check(
        status == 503 && health["ready"] == false,
        "/health is 503 during the upstream outage",
    )?;
    let (_, page) = client.get("/status").await?;
    let (_, json) = client.get("/status.json").await?;
    check(
        page.contains("data-service=\"upstream\" data-breaker=\"open\""),
        "/status shows the upstream open",
    )?;
    check(
        json.contains("consecutive_failures"),
        "/status.json carries the transition's reason",
    )?;
    let leaked = [page, json, body.to_string(), health.to_string()]
        .iter()
        .any(|text| text.contains(SECRET));
    check(
        !leaked,
        "no error text of the upstream in /status, /status.json, /health or answers",
    )?;

    // 4. Recovery: after the open period a probe closes the breaker and readiness returns.
    client.fault(Mode::Ok).await?;
    wait_for(
        "/health is 200 again after recovery",
        Duration::from_secs(20),
        || async {
            client.get("/quote/2").await?;
            Ok(client.get("/health").await?.0 == 200)
        },
    )
    .await?;
    let (status, quote) = client.json("/quote/1").await?;
    check(
        status == 200 && quote["source"] == "upstream",
        "after recovery, quotes come from the upstream again",
    )?;
    println!("self-test passed");
    Ok(())
}
