//! Opening Redis connections and turning Redis failures into chat-core's
//! portable [`Error`].

use std::future::Future;
use std::time::Duration;

use chat_core::Error;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::options::RedisOptions;

/// `Unavailable`, naming what failed, with the Redis error as source.
pub(crate) fn unavailable(what: &str, e: redis::RedisError) -> Error {
    Error::unavailable(format!("redis: {what}"), e)
}

/// Runs `call`, failing with `Unavailable` when it fails or takes longer than `limit`.
pub(crate) async fn within<T>(
    what: &str,
    limit: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> chat_core::Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unavailable(what, e)),
        Err(_) => Err(Error::unavailable_msg(format!(
            "redis: {what}: no answer within {limit:?}"
        ))),
    }
}

/// The multiplexed command connection shared by presence, discovery and
/// bus publishes. It reconnects by itself after a failure; while Redis is
/// down each command fails after about one connect timeout instead of
/// queueing behind long retries.
pub(crate) async fn commands(
    client: &redis::Client,
    options: &RedisOptions,
) -> chat_core::Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout))
        .set_number_of_retries(1)
        .set_min_delay(options.reconnect_min)
        .set_max_delay(options.reconnect_max);
    let limit = options.connect_timeout + options.response_timeout;
    within(
        "connect",
        limit,
        client.get_connection_manager_with_config(config),
    )
    .await
}
