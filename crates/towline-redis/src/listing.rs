//! The gates stored in Redis, listed: what a mirror starts from and what
//! [`RedisStore`](crate::RedisStore) lists as closed.

use std::time::Duration;

use towline_core::BoxError;

use crate::connection::Redis;

/// Every gate key under the prefix with its time left (SCAN: never blocks Redis).
pub(crate) async fn list_gates(redis: &Redis) -> Result<Vec<(String, Duration)>, BoxError> {
    let prefix = redis.key("gate", "");
    let pattern = format!("{}*", glob_escape(&prefix));
    let mut cursor = 0u64;
    let mut gates = Vec::new();
    loop {
        let pattern = pattern.clone();
        let (next, keys): (u64, Vec<String>) = redis
            .run("list the gates", |mut c| async move {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        for key in keys {
            let ttl: i64 = redis
                .run("list the gates", |mut c| {
                    let key = key.clone();
                    async move { redis::cmd("PTTL").arg(key).query_async(&mut c).await }
                })
                .await?;
            if let (Ok(ms), Some(name)) = (u64::try_from(ttl), key.strip_prefix(&prefix)) {
                gates.push((name.to_owned(), Duration::from_millis(ms)));
            }
        }
        if next == 0 {
            return Ok(gates);
        }
        cursor = next;
    }
}

fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
