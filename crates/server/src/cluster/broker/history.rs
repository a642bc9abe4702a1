//! The histories of the app's endpoints across hosts, in Redis: per room (or endpoint), a hash
//! of its epoch and offsets, a stream of its last broadcasts (`MAXLEN`, each entry's id its
//! offset), and what waits to be released. Each operation is one Lua script, so one round
//! trip: appending a broadcast assigns its offset, keeps it and publishes it at once;
//! broadcasts whose message was built after their offset was reserved are released in offset
//! order, whichever host commits first (the same rules as `ws/registry/history`).
//!
//! What is published on the room's channel is the offset (20 decimal digits, which no
//! envelope starts with) followed by the envelope; every node, the sender's too, delivers it
//! from there, so all clients get a room's broadcasts in offset order. A history that Redis
//! lost (flushed, or restarted empty) starts again in a new epoch.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script, Value};
use tokio_tungstenite::tungstenite::Message;

use super::REDIS_TIMEOUT;
use super::channels::Channels;
use super::envelope::{Content, Envelope};
use crate::ws::registry::history::{ABANDONED_AFTER, Catchup, Gap, Keep, Position, new_epoch};
use crate::ws::registry::presence::Scope;

/// Shared by every script: the keys, Redis's clock, starting a history, releasing in order.
const COMMON: &str = r"
local meta, waiting, reserved, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function touch(idle_ms)
  for _, key in ipairs(KEYS) do
    redis.call('PEXPIRE', key, idle_ms)
  end
end
local function ensure(epoch)
  if redis.call('EXISTS', meta) == 0 then
    redis.call('HSET', meta, 'epoch', epoch, 'reserved', 0, 'released', 0, 'forgotten', 0)
  end
end
local function release(keep, channel, abandoned_ms)
  local now = now_ms()
  local released = tonumber(redis.call('HGET', meta, 'released'))
  local last = tonumber(redis.call('HGET', meta, 'reserved'))
  while released < last do
    local nxt = released + 1
    local payload = redis.call('HGET', waiting, nxt)
    if payload then
      redis.call('HDEL', waiting, nxt)
      if payload ~= '' then
        if redis.call('XLEN', log) >= keep then
          local oldest = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
          redis.call('HSET', meta, 'forgotten', string.match(oldest[1][1], '^(%d+)'))
        end
        redis.call('XADD', log, 'MAXLEN', keep, nxt .. '-1', 'p', payload, 't', now)
        redis.call('PUBLISH', channel, string.format('%020d', nxt) .. payload)
      end
    else
      local since = redis.call('ZSCORE', reserved, nxt)
      if since and now - tonumber(since) < abandoned_ms then
        break
      end
      redis.call('ZREM', reserved, nxt)
    end
    released = nxt
  end
  redis.call('HSET', meta, 'released', released)
  return {released, last}
end
";

/// ARGV: new epoch, keep, channel, abandoned ms, payload, idle ms. Returns {offset, released, reserved}.
const APPEND: &str = r"
ensure(ARGV[1])
local offset = redis.call('HINCRBY', meta, 'reserved', 1)
redis.call('HSET', waiting, offset, ARGV[5])
local state = release(tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]))
touch(ARGV[6])
return {offset, state[1], state[2]}
";

/// ARGV: new epoch, idle ms. Returns the offset reserved.
const RESERVE: &str = r"
ensure(ARGV[1])
local offset = redis.call('HINCRBY', meta, 'reserved', 1)
redis.call('ZADD', reserved, now_ms(), offset)
touch(ARGV[2])
return offset
";

/// ARGV: keep, channel, abandoned ms, offset, payload ('' gives it up), idle ms. Returns
/// {released, reserved}.
const COMMIT: &str = r"
if redis.call('EXISTS', meta) == 0 then
  return {0, 0}
end
local offset = tonumber(ARGV[4])
redis.call('ZREM', reserved, offset)
if offset > tonumber(redis.call('HGET', meta, 'released')) then
  redis.call('HSET', waiting, offset, ARGV[5])
end
local state = release(tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]))
touch(ARGV[6])
return state
";

/// ARGV: keep, channel, abandoned ms. Returns {released, reserved}.
const RELEASE: &str = r"
if redis.call('EXISTS', meta) == 0 then
  return {0, 0}
end
return release(tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]))
";

/// ARGV: new epoch, whether a position follows (1/0), its epoch, its offset, span ms (0: none),
/// idle ms. Returns {epoch, released, status (0 ok, 1 epoch, 2 too old), offset, payload, ...}.
const CATCH_UP: &str = r"
ensure(ARGV[1])
if redis.call('PTTL', meta) < 0 then
  -- Begun by this question: it lasts like a history that nobody broadcasts to.
  redis.call('PEXPIRE', meta, ARGV[6])
end
local epoch = redis.call('HGET', meta, 'epoch')
local released = tonumber(redis.call('HGET', meta, 'released'))
if ARGV[2] == '0' then
  return {epoch, released, 0}
end
local since = tonumber(ARGV[4])
if ARGV[3] ~= epoch or since > released then
  return {epoch, released, 1}
end
local forgotten = tonumber(redis.call('HGET', meta, 'forgotten'))
local span = tonumber(ARGV[5])
local cutoff = -1
if span > 0 then
  cutoff = now_ms() - span
end
local out = {epoch, released, 0}
for _, entry in ipairs(redis.call('XRANGE', log, (since + 1) .. '-0', '+')) do
  local offset = tonumber(string.match(entry[1], '^(%d+)'))
  if tonumber(entry[2][4]) < cutoff then
    forgotten = math.max(forgotten, offset)
  else
    table.insert(out, offset)
    table.insert(out, entry[2][2])
  end
end
if since < forgotten then
  return {epoch, released, 2}
end
return out
";

struct Scripts {
    append: Script,
    reserve: Script,
    commit: Script,
    release: Script,
    catch_up: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |body: &str| Script::new(&format!("{COMMON}{body}"));
    Scripts {
        append: script(APPEND),
        reserve: script(RESERVE),
        commit: script(COMMIT),
        release: script(RELEASE),
        catch_up: script(CATCH_UP),
    }
});

/// The broker's histories: one connection for their scripts, opened when first needed and
/// again after a failure.
pub struct Histories {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    channels: Channels,
    node: u32,
}

/// One scope's keys and channel.
struct Names {
    keys: [String; 4],
    channel: String,
}

impl Histories {
    pub fn new(client: redis::Client, db: i64, node: u32) -> Arc<Self> {
        Arc::new(Self { client, connection: tokio::sync::Mutex::new(None), channels: Channels::new(db), node })
    }

    fn names(&self, scope: &Scope) -> Names {
        let base = self.channels.history(&scope.endpoint, scope.room.as_deref());
        Names {
            keys: [
                format!("{base}:meta"),
                format!("{base}:waiting"),
                format!("{base}:reserved"),
                format!("{base}:log"),
            ],
            channel: self.channels.of(&scope.endpoint, scope.room.as_deref()),
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut connection = self.connection.lock().await;
        if let Some(open) = connection.as_ref() {
            return Ok(open.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let open = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| unreachable_broker(&error))?;
        *connection = Some(open.clone());
        Ok(open)
    }

    /// Runs a script; a failure drops the connection, so the next call opens a new one.
    async fn run<T: redis::FromRedisValue>(&self, script: &Script, names: &Names, args: &[&[u8]]) -> Result<T, String> {
        let mut connection = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        for key in &names.keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        match invocation.invoke_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(error) => {
                *self.connection.lock().await = None;
                Err(unreachable_broker(&error))
            }
        }
    }

    fn envelope(&self, message: Message, except: Option<u128>) -> Bytes {
        Envelope::new(self.node, Content::Kept { except, message }).encode()
    }

    pub fn append(
        self: &Arc<Self>,
        scope: &Scope,
        keep: Keep,
        message: Message,
        except: Option<u128>,
    ) -> BoxFuture<'static, Result<u64, String>> {
        let (histories, names, payload) = (self.clone(), self.names(scope), self.envelope(message, except));
        Box::pin(async move {
            let epoch = new_epoch();
            let (count, channel, abandoned) = release_args(keep, &names);
            let idle = idle_ms(keep);
            let args: [&[u8]; 6] =
                [epoch.as_bytes(), count.as_bytes(), channel, abandoned.as_bytes(), &payload, idle.as_bytes()];
            let (offset, released, reserved): (u64, u64, u64) = histories.run(&SCRIPTS.append, &names, &args).await?;
            histories.release_later_if_waiting(names, keep, released, reserved);
            Ok(offset)
        })
    }

    pub fn reserve(self: &Arc<Self>, scope: &Scope, keep: Keep) -> BoxFuture<'static, Result<u64, String>> {
        let (histories, names) = (self.clone(), self.names(scope));
        Box::pin(async move {
            let (epoch, idle) = (new_epoch(), idle_ms(keep));
            histories.run(&SCRIPTS.reserve, &names, &[epoch.as_bytes(), idle.as_bytes()]).await
        })
    }

    /// The message of a reserved offset; what it releases is published by Redis.
    pub fn commit(
        self: &Arc<Self>,
        scope: &Scope,
        keep: Keep,
        offset: u64,
        message: Option<Message>,
        except: Option<u128>,
    ) -> BoxFuture<'static, ()> {
        let (histories, names) = (self.clone(), self.names(scope));
        let payload = message.map(|message| self.envelope(message, except)).unwrap_or_default();
        Box::pin(async move {
            let (count, channel, abandoned) = release_args(keep, &names);
            let (offset, idle) = (offset.to_string(), idle_ms(keep));
            let args: [&[u8]; 6] =
                [count.as_bytes(), channel, abandoned.as_bytes(), offset.as_bytes(), &payload, idle.as_bytes()];
            match histories.run::<(u64, u64)>(&SCRIPTS.commit, &names, &args).await {
                Ok((released, reserved)) => histories.release_later_if_waiting(names, keep, released, reserved),
                Err(error) => tracing::warn!("a kept broadcast was lost: {error}"),
            }
        })
    }

    /// Offsets still wait for their message (reserved elsewhere): once they count as
    /// abandoned, release what follows them, unless their message came meanwhile.
    fn release_later_if_waiting(self: Arc<Self>, names: Names, keep: Keep, released: u64, reserved: u64) {
        if released >= reserved {
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(ABANDONED_AFTER + Duration::from_millis(100)).await;
            let (count, channel, abandoned) = release_args(keep, &names);
            let args: [&[u8]; 3] = [count.as_bytes(), channel, abandoned.as_bytes()];
            if let Ok((released, reserved)) = self.run::<(u64, u64)>(&SCRIPTS.release, &names, &args).await {
                self.release_later_if_waiting(names, keep, released, reserved);
            }
        });
    }

    pub fn catch_up(
        self: &Arc<Self>,
        scope: &Scope,
        keep: Keep,
        since: Option<(String, u64)>,
    ) -> BoxFuture<'static, Result<(Position, Catchup), String>> {
        let (histories, names) = (self.clone(), self.names(scope));
        Box::pin(async move {
            let epoch = new_epoch();
            let (has_since, (since_epoch, since_offset)) = (since.is_some(), since.unwrap_or_default());
            let since_offset = since_offset.to_string();
            let span = keep.span.map_or(0, |span| span.as_millis()).to_string();
            let idle = idle_ms(keep);
            let args: [&[u8]; 6] = [
                epoch.as_bytes(),
                if has_since { b"1" } else { b"0" },
                since_epoch.as_bytes(),
                since_offset.as_bytes(),
                span.as_bytes(),
                idle.as_bytes(),
            ];
            let answer: Vec<Value> = histories.run(&SCRIPTS.catch_up, &names, &args).await?;
            caught_up(answer).ok_or_else(|| "the broker's history answered in a form this server does not know".into())
        })
    }
}

/// The arguments every releasing script takes: how many to keep, the channel, and when a
/// reserved offset counts as abandoned.
fn release_args(keep: Keep, names: &Names) -> (String, &[u8], String) {
    (keep.count.max(1).to_string(), names.channel.as_bytes(), ABANDONED_AFTER.as_millis().to_string())
}

/// How long a history's keys last in Redis without a broadcast, in ms.
fn idle_ms(keep: Keep) -> String {
    keep.idle_limit().as_millis().to_string()
}

/// The catch-up script's answer as a position and what was missed.
fn caught_up(answer: Vec<Value>) -> Option<(Position, Catchup)> {
    let mut values = answer.into_iter();
    let epoch: String = redis::from_redis_value(values.next()?).ok()?;
    let offset: u64 = redis::from_redis_value(values.next()?).ok()?;
    let status: u8 = redis::from_redis_value(values.next()?).ok()?;
    let catchup = match status {
        0 => {
            let mut missed = Vec::new();
            while let Some(offset) = values.next() {
                let offset: u64 = redis::from_redis_value(offset).ok()?;
                let payload: Vec<u8> = redis::from_redis_value(values.next()?).ok()?;
                if let Content::Kept { message, .. } = Envelope::decode(Bytes::from(payload))?.content {
                    missed.push((offset, message));
                }
            }
            Ok(missed)
        }
        1 => Err(Gap::Epoch),
        _ => Err(Gap::TooOld),
    };
    Some((Position { epoch, offset }, catchup))
}

/// What a published kept broadcast carries: its offset, then its envelope. None for anything
/// else (an envelope starts with its version byte, never a digit).
pub fn kept_offset(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (digits, envelope) = payload.split_at_checked(20)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, envelope))
}

fn unreachable_broker(error: &redis::RedisError) -> String {
    format!("the broker's history cannot be reached ({error}); the broadcast was not made, try again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_kept_broadcast_names_its_offset_and_nothing_else_does() {
        let envelope = Envelope::new(1, Content::Kept { except: None, message: Message::Text("x".into()) }).encode();
        let mut published = format!("{:020}", 42).into_bytes();
        published.extend_from_slice(&envelope);
        assert_eq!(kept_offset(&published), Some((42, &envelope[..])));
        assert_eq!(kept_offset(&envelope), None, "a plain envelope");
        assert_eq!(kept_offset(b"123"), None);
    }

    #[test]
    fn the_catch_up_answer_reads_back() {
        let envelope = Envelope::new(1, Content::Kept { except: None, message: Message::Text("a".into()) }).encode();
        let answer = vec![
            Value::BulkString(b"e1".to_vec()),
            Value::Int(5),
            Value::Int(0),
            Value::Int(5),
            Value::BulkString(envelope.to_vec()),
        ];
        let (position, catchup) = caught_up(answer).unwrap();
        assert_eq!(position, Position { epoch: "e1".into(), offset: 5 });
        assert_eq!(catchup, Ok(vec![(5, Message::Text("a".into()))]));
        let gap = vec![Value::BulkString(b"e2".to_vec()), Value::Int(0), Value::Int(1)];
        assert_eq!(caught_up(gap).unwrap().1, Err(Gap::Epoch));
    }
}
