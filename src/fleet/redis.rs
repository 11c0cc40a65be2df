//! [`RedisStore`]: the fleet store in Redis. Each operation is one Lua script (atomic in the
//! server, timed by the server's `TIME`), sent on one multiplexed connection per store; a
//! failed operation drops the connection, and the next one (after the fleet's backoff)
//! connects again.
//!
//! Keys: `warden:{KEY}:quota` holds the GCRA's theoretical arrival time (microseconds on the
//! server's clock, expiring once the limit is full again); `warden:{KEY}:budget:{N}` the calls
//! and retries of the budget window's tenth number `N` (a hash `c`, `r`, expiring after two
//! windows). `{KEY}` is a hash tag, so a cluster keeps a fleet's keys on one node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script};

use super::budget::BudgetCounts;
use super::store::{FleetStore, Grant, StoreError, StoreFuture};

/// GCRA: ARGV = interval (µs), burst, tokens asked. Returns {granted, retry_after (µs)}.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local asked = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local tolerance = interval * burst
local available = math.floor((now + tolerance - tat) / interval)
if available < 0 then available = 0 end
local granted = math.min(asked, available)
tat = tat + granted * interval
if granted > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local retry_after = 0
if granted < asked then
  retry_after = tat + interval - (now + tolerance)
  if retry_after < 0 then retry_after = 0 end
end
return {granted, retry_after}
";

/// Budget: KEYS[1] = the key prefix; ARGV = tenth of the window (µs), calls, retries.
/// Returns {calls, retries} over the ten tenths.
const SYNC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local width = tonumber(ARGV[1])
local bucket = math.floor(now / width)
local current = KEYS[1] .. ':' .. string.format('%.0f', bucket)
redis.call('HINCRBY', current, 'c', ARGV[2])
redis.call('HINCRBY', current, 'r', ARGV[3])
redis.call('PEXPIRE', current, math.ceil(width * 20 / 1000))
local calls, retries = 0, 0
for i = 0, 9 do
  local counts = redis.call('HMGET', KEYS[1] .. ':' .. string.format('%.0f', bucket - i), 'c', 'r')
  calls = calls + (tonumber(counts[1]) or 0)
  retries = retries + (tonumber(counts[2]) or 0)
end
return {calls, retries}
";

/// A fleet store in one Redis server (see the module docs). Cloning shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: Client,
    timeout: Duration,
    connection: Mutex<Option<MultiplexedConnection>>,
    take: Script,
    sync: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`, `rediss://…`, `redis+unix:///path`), each
    /// connection attempt and each operation bounded by `timeout`. Connects on first use.
    pub fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::new(e.to_string()))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                url: url.to_string(),
                client,
                timeout,
                connection: Mutex::new(None),
                take: Script::new(TAKE),
                sync: Script::new(SYNC),
            }),
        })
    }

    /// The store of this process for `url`: one connection per server, shared by every
    /// service that names it.
    pub fn shared(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        static STORES: OnceLock<Mutex<HashMap<String, RedisStore>>> = OnceLock::new();
        let mut stores = STORES
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = stores.get(url) {
            return Ok(store.clone());
        }
        let store = RedisStore::open(url, timeout)?;
        stores.insert(url.to_string(), store.clone());
        Ok(store)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let kept = self
            .inner
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(connection) = kept {
            return Ok(connection);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.timeout))
            .set_response_timeout(Some(self.inner.timeout));
        let connection = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| StoreError::new(format!("connecting: {e}")))?;
        *self
            .inner
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `script` on the connection; a failure drops the connection.
    async fn invoke(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<(u64, u64), StoreError> {
        let mut connection = self.connection().await?;
        let answer = tokio::time::timeout(
            self.inner.timeout,
            invocation.invoke_async::<(u64, u64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok(answer)) => Ok(answer),
            failed => {
                *self
                    .inner
                    .connection
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                Err(StoreError::new(match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_string(),
                }))
            }
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl FleetStore for RedisStore {
    fn take<'a>(
        &'a self,
        key: &'a str,
        interval: Duration,
        burst: u32,
        tokens: u32,
    ) -> StoreFuture<'a, Grant> {
        Box::pin(async move {
            let mut invocation = self.inner.take.key(format!("warden:{{{key}}}:quota"));
            invocation.arg(micros(interval)).arg(burst).arg(tokens);
            let (granted, retry_after) = self.invoke(invocation).await?;
            Ok(Grant {
                tokens: u32::try_from(granted).unwrap_or(tokens).min(tokens),
                retry_after: Duration::from_micros(retry_after),
            })
        })
    }

    fn sync_budget<'a>(
        &'a self,
        key: &'a str,
        window: Duration,
        deposit: BudgetCounts,
    ) -> StoreFuture<'a, BudgetCounts> {
        Box::pin(async move {
            let mut invocation = self.inner.sync.key(format!("warden:{{{key}}}:budget"));
            invocation
                .arg(micros(window / 10))
                .arg(deposit.calls)
                .arg(deposit.retries);
            let (calls, retries) = self.invoke(invocation).await?;
            Ok(BudgetCounts { calls, retries })
        })
    }
}
