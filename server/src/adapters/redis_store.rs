//! Redis `ConversationStore`: production and several instances (DESIGN.md "Ports and their
//! adapters"). Selected whenever `store.redis_url` is set.
//!
//! # Layout (`P` = `store.key_prefix`, `S` = site id, `C` = conversation id, `V` = visitor id)
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `P conv:S:C:meta` | hash | `visitor`, `status`, `created_at`, `status_changed_at` (RFC 3339), `last_event_id` (the event-id counter), optional `user_id`, `locale`, `page_url`, `contact_email`, `csat` (JSON), `handoff` (the pending handoff, JSON), `assignee`, `ticket` (the last `HandoffTicket`, JSON) |
//! | `P conv:S:C:events` | list | the event log: element `n - 1` is event `n` (a `StoredEvent` as JSON) |
//! | `P conv:S:C:ids` | hash | `m:<client_message_id>` → `"<message_id> <event_id>"` (idempotency), `a:<answer_id>` → feedback `-` (none), `1` (helpful), `0` |
//! | `P visitor:S:V` | sorted set | the visitor's conversation ids, scored by creation time (ms) |
//! | `P spend:S:YYYY-MM` | string (integer) | LLM spending of the site that month, micro-dollars (`INCRBY`; 62-day expiry) |
//! | `P outbox` | sorted set | handoffs waiting for their helpdesk ticket, member `S:C`, scored by when the next attempt is due (ms); a claim moves the score to the lease's end |
//! | `P outbox:attempts` | hash | `S:C` → failed delivery attempts |
//! | `P queue:S` | sorted set | the site's open handoffs (pending or assigned), member `C`, scored by when they entered the queue (ms) |
//! | `P queue:S:waiting` | sorted set | the same, while not assigned (the visitor's place in line) |
//! | `P queue:S:agent:A` | sorted set | the site's open handoffs assigned to inbox agent `A` (their load) |
//! | `P delivery:K` | string | a webhook delivery seen (Zendesk invocation id or signature, Intercom notification id), for 15 minutes |
//! | `P agents:online` | sorted set | inbox agents, scored by when their presence runs out (ms) |
//! | `P presence:S:C` | sorted set | sockets showing the conversation, scored by when their presence runs out (ms); the key expires with the last |
//! | `P ticket:H:T` | string | `S:C` of helpdesk `H`'s ticket `T` (expires with the closed conversation) |
//!
//! Pub/sub channel `P conv:S:C` carries each appended event (the same JSON as the log).
//!
//! # Guarantees
//!
//! - Every write that spans keys is one Lua script, so it is atomic and one round trip:
//!   the idempotent append checks the `client_message_id` and the status (a closed
//!   conversation takes no message), allocates the event id, appends, records the id and
//!   publishes, all at once; two racing appends of one id store one message. Opening a
//!   handoff (pending check, event, record, status, outbox and queue entries, publish) is one
//!   script too, so two instances handling the same request open one handoff, and a recorded
//!   handoff is always in the outbox (no handoff without its ticket).
//! - Only closed conversations expire: closing sets `PEXPIREAT` (closing time + `closed_ttl`)
//!   on the conversation's three keys; reopening (or a pending handoff) `PERSIST`s them. The
//!   visitor index expires with the visitor's last closed conversation and is persisted again
//!   when one opens. A write to a closed conversation gives any key it creates the same expiry.
//! - Cross-instance delivery: each instance keeps one pub/sub connection (a background task)
//!   subscribed to the channels of the conversations its sockets follow. Pub/sub is
//!   at-most-once, so a follower re-reads the log after its last event id whenever it sees a
//!   gap in event ids, lags behind its buffer, or the pub/sub connection comes back after a
//!   drop: no loss, no duplicate, in event-id order.
//! - Failures are fast: every command has `store.timeout` (connecting included); a refused or
//!   dropped connection fails at once with [`StoreError::Unavailable`], and the connection
//!   manager reconnects in the background, so the conversation goes on once Redis is back.
//!
//! Redis Cluster is not supported (scripts touch a visitor's index and conversations, which
//! would live in different slots); use a standalone or Sentinel-managed primary.

use crate::domain::{
    Conversation, ConversationStatus, Csat, EmailAddress, EventKind, HandoffTicket, PendingHandoff,
    StoredEvent,
};
use crate::ids::{
    AnswerId, ClientMessageId, ConversationId, EventId, MessageId, SiteId, VisitorId,
};
use crate::ports::store::{
    AppendedMessage, Claimed, ConversationStore, DueHandoff, EventStream, NewConversation,
    OpenedHandoff, OutboxStats, StoreError,
};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, RedisError, ServerErrorKind};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

/// Notices buffered per followed conversation before a follower counts as lagging (it then
/// re-reads the log).
const CHANNEL_CAPACITY: usize = 256;
/// Events read per catch-up from the log.
const CATCH_UP_PAGE: usize = 500;
/// How often the pub/sub connection is checked with a `PING`.
const PUBSUB_HEALTH_EVERY: Duration = Duration::from_secs(5);
/// First and longest wait between pub/sub reconnection attempts.
const PUBSUB_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));
/// First and longest wait between a follower's catch-up attempts while Redis is down.
const CATCH_UP_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// Appends an event: `KEYS` = meta, events, ids; `ARGV` = channel, created_at (RFC 3339),
/// kind (JSON), dedupe field (`m:<client id>` or empty), message id, answer field
/// (`a:<answer id>` or empty), outbox key, outbox member, now (ms): a visitor message to a
/// conversation whose ticket is in an external helpdesk enters the outbox (the follow-up is
/// synced to the ticket). Returns `{code, event_id, first, status}`: code 0 = no
/// conversation, 1 = appended, 2 = duplicate (`first` = `"<message_id> <event_id>"` of the
/// first append), 3 = a visitor message refused because the conversation is closed; `status`
/// is the conversation's status at that moment.
const APPEND: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0, '', ''} end
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[4] ~= '' then
  local first = redis.call('HGET', KEYS[3], ARGV[4])
  if first then return {2, 0, first, status} end
  if status == 'closed' then return {3, 0, '', status} end
end
local id = redis.call('HINCRBY', KEYS[1], 'last_event_id', 1)
local event = '{"event_id":' .. id .. ',"created_at":"' .. ARGV[2] .. '","kind":' .. ARGV[3] .. '}'
redis.call('RPUSH', KEYS[2], event)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[4], ARGV[5] .. ' ' .. id) end
if ARGV[4] ~= '' and (status == 'waiting_for_agent' or status == 'with_agent') then
  local ticket = redis.call('HGET', KEYS[1], 'ticket')
  if ticket and cjson.decode(ticket).helpdesk ~= 'inbox' then
    redis.call('ZADD', ARGV[7], 'NX', ARGV[9], ARGV[8])
  end
end
if ARGV[6] ~= '' then redis.call('HSETNX', KEYS[3], ARGV[6], '-') end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ttl) end
end
redis.call('PUBLISH', ARGV[1], event)
return {1, id, '', status}
"#;

/// Creates a conversation unless it exists: `KEYS` = meta, visitor index; `ARGV` =
/// conversation id, creation time (ms), then field/value pairs. Returns the stored hash.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  redis.call('PERSIST', KEYS[2])
end
return redis.call('HGETALL', KEYS[1])
"#;

/// Sets the status: `KEYS` = meta, events, ids, queue; `ARGV` = status, status_changed_at
/// (RFC 3339), expiry if closed (unix ms), visitor key prefix, conversation key prefix,
/// conversation id, ticket index key prefix, then extra field/value pairs for the meta hash.
/// Returns 0 when there is no conversation. Back to `bot` or closed leaves the queue; the
/// ticket index key expires with the closed conversation.
const SET_STATUS: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'status_changed_at', ARGV[2])
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
if ARGV[1] == 'closed' or ARGV[1] == 'bot' then
  redis.call('ZREM', KEYS[4], ARGV[6])
  redis.call('ZREM', KEYS[4] .. ':waiting', ARGV[6])
  local assignee = redis.call('HGET', KEYS[1], 'assignee')
  if assignee then redis.call('ZREM', KEYS[4] .. ':agent:' .. assignee, ARGV[6]) end
end
local ticket = redis.call('HGET', KEYS[1], 'ticket')
if ticket then
  local t = cjson.decode(ticket)
  local ticket_key = ARGV[7] .. t.helpdesk .. ':' .. t.id
  if ARGV[1] == 'closed' then redis.call('PEXPIREAT', ticket_key, ARGV[3]) else redis.call('PERSIST', ticket_key) end
end
local visitor_key = ARGV[4] .. redis.call('HGET', KEYS[1], 'visitor')
if ARGV[1] == 'closed' then
  for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], ARGV[3]) end
  local open = false
  for _, other in ipairs(redis.call('ZRANGE', visitor_key, 0, -1)) do
    local status = redis.call('HGET', ARGV[5] .. other .. ':meta', 'status')
    if status and status ~= 'closed' then open = true break end
  end
  if not open then
    local now = redis.call('TIME')
    local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    local current = redis.call('PTTL', visitor_key)
    if current == -1 or current < tonumber(ARGV[3]) - now_ms then
      redis.call('PEXPIREAT', visitor_key, ARGV[3])
    end
  end
else
  for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
  redis.call('PERSIST', visitor_key)
end
return 1
"#;

/// Opens a handoff unless one announced by a `handoff` event is pending: `KEYS` = meta,
/// events, ids, queue, outbox, outbox attempts; `ARGV` = channel, created_at (RFC 3339), kind
/// (JSON), the pending handoff as JSON without its `event_id` and `handoff_id`, visitor key
/// prefix, handoff id (kept from a pending draft), conversation id, outbox member, due (ms).
/// Returns `{code, event}`: code 0 = no conversation, 1 = opened (`event` = the new event),
/// 2 = already pending (its event), 3 = the conversation is closed.
const OPEN_HANDOFF: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
if redis.call('HGET', KEYS[1], 'status') == 'closed' then return {3, ''} end
local handoff_id = ARGV[6]
local fields = ARGV[4]
local pending = redis.call('HGET', KEYS[1], 'handoff')
if pending then
  local previous = cjson.decode(pending)
  local announced = redis.call('LINDEX', KEYS[2], previous.event_id - 1)
  if announced and cjson.decode(announced).kind.kind == 'handoff' then return {2, announced} end
  -- A draft an agent already took: it is with them; nothing new to open.
  if announced and redis.call('HGET', KEYS[1], 'assignee') then return {2, announced} end
  if previous.handoff_id then handoff_id = previous.handoff_id end
  -- The draft stays for the agent to approve or reject: its JSON is copied as stored (not
  -- re-encoded: cjson would turn an empty list into an object).
  if type(previous.draft) == 'table' then
    local draft = nil
    local _, key_end = string.find(pending, '"draft":{', 1, true)
    if key_end then
      local depth, in_string, escaped = 0, false, false
      for j = key_end, #pending do
        local c = string.sub(pending, j, j)
        if in_string then
          if escaped then escaped = false elseif c == '\\' then escaped = true elseif c == '"' then in_string = false end
        elseif c == '"' then in_string = true
        elseif c == '{' then depth = depth + 1
        elseif c == '}' then
          depth = depth - 1
          if depth == 0 then draft = string.sub(pending, key_end, j) break end
        end
      end
    end
    local s, e = string.find(fields, '"draft":null', 1, true)
    if draft and s then fields = string.sub(fields, 1, s - 1) .. '"draft":' .. draft .. string.sub(fields, e + 1) end
  end
end
redis.call('ZADD', KEYS[4], 'NX', ARGV[9], ARGV[7])
local joined = 0
if not redis.call('HGET', KEYS[1], 'assignee') then
  joined = redis.call('ZADD', KEYS[4] .. ':waiting', 'NX', ARGV[9], ARGV[7])
end
-- The place in line, read in this same step: the announcement's queue_position marker (its
-- last field, `"queue_position":0}`) becomes it. A newcomer is last in line (arrival order);
-- one already waiting (a draft that became a handoff) keeps its rank.
local kind = ARGV[3]
local marker = ',"queue_position":0}'
if string.sub(kind, -string.len(marker)) == marker then
  local position
  if joined == 1 then
    position = redis.call('ZCARD', KEYS[4] .. ':waiting')
  else
    local rank = redis.call('ZRANK', KEYS[4] .. ':waiting', ARGV[7])
    position = rank and (rank + 1) or 1
  end
  kind = string.sub(kind, 1, -string.len(marker) - 1) .. ',"queue_position":' .. position .. '}'
end
local id = redis.call('HINCRBY', KEYS[1], 'last_event_id', 1)
local event = '{"event_id":' .. id .. ',"created_at":"' .. ARGV[2] .. '","kind":' .. kind .. '}'
redis.call('RPUSH', KEYS[2], event)
local handoff = '{"event_id":' .. id .. ',"handoff_id":"' .. handoff_id .. '",' .. string.sub(fields, 2)
redis.call('HSET', KEYS[1], 'handoff', handoff, 'status', 'waiting_for_agent', 'status_changed_at', ARGV[2])
for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
redis.call('PERSIST', ARGV[5] .. redis.call('HGET', KEYS[1], 'visitor'))
redis.call('ZADD', KEYS[5], ARGV[9], ARGV[8])
redis.call('HDEL', KEYS[6], ARGV[8])
redis.call('PUBLISH', ARGV[1], event)
return {1, event}
"#;

/// Records a pending handoff (a draft awaiting approval): `KEYS` = meta, events, ids, queue,
/// outbox, outbox attempts; `ARGV` = the handoff as JSON without `handoff_id`, handoff id
/// (a pending one's is kept), status_changed_at (RFC 3339), visitor key prefix, conversation
/// id, outbox member, due (ms). Returns 0 when there is no conversation.
const PUT_PENDING_HANDOFF: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'closed' then return 3 end
local handoff_id = ARGV[2]
local pending = redis.call('HGET', KEYS[1], 'handoff')
if pending then
  local previous = cjson.decode(pending)
  if previous.handoff_id then handoff_id = previous.handoff_id end
end
local handoff = '{"handoff_id":"' .. handoff_id .. '",' .. string.sub(ARGV[1], 2)
redis.call('HSET', KEYS[1], 'handoff', handoff, 'status', 'waiting_for_agent', 'status_changed_at', ARGV[3])
for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
redis.call('PERSIST', ARGV[4] .. redis.call('HGET', KEYS[1], 'visitor'))
redis.call('ZADD', KEYS[4], 'NX', ARGV[7], ARGV[5])
if not redis.call('HGET', KEYS[1], 'assignee') then redis.call('ZADD', KEYS[4] .. ':waiting', 'NX', ARGV[7], ARGV[5]) end
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6])
redis.call('HDEL', KEYS[6], ARGV[6])
return 1
"#;

/// Records a socket's presence: `KEYS` = presence key; `ARGV` = socket id, until (ms). Drops
/// sockets whose time ran out; the key expires with the latest.
const TOUCH_PRESENCE: &str = r#"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(now[1]) * 1000)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1
"#;

/// Claims due handoffs: `KEYS` = outbox, outbox attempts; `ARGV` = now (ms), lease end (ms),
/// limit. Returns `member, attempts` pairs, oldest due first.
const CLAIM_DUE_HANDOFFS: &str = r#"
local claimed = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member)
  table.insert(claimed, member)
  table.insert(claimed, redis.call('HGET', KEYS[2], member) or '0')
end
return claimed
"#;

/// Schedules a retry: `KEYS` = outbox, outbox attempts; `ARGV` = member, due (ms).
const RETRY_HANDOFF: &str = r#"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
end
return 1
"#;

/// Records a handoff's ticket: `KEYS` = meta, outbox, outbox attempts, ticket index key;
/// `ARGV` = outbox member, handoff id, ticket (JSON), the ticket's `synced_through`, now (ms).
/// Returns 1 when recorded, 0 when that handoff is no longer pending. The outbox entry stays
/// (due now) when events came after `synced_through` (follow-ups to sync).
const RECORD_TICKET: &str = r#"
local pending = redis.call('HGET', KEYS[1], 'handoff')
local pending_id = pending and cjson.decode(pending).handoff_id
if not pending_id or pending_id == ARGV[2] then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last_event_id') or '0')
  if pending_id and last > tonumber(ARGV[4]) then
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  else
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
  redis.call('HDEL', KEYS[3], ARGV[1])
end
if pending_id ~= ARGV[2] then return 0 end
local old = redis.call('HGET', KEYS[1], 'ticket')
if old then
  local t = cjson.decode(old)
  local old_key = string.sub(KEYS[4], 1, string.find(KEYS[4], 'ticket:', 1, true) + 6) .. t.helpdesk .. ':' .. t.id
  if old_key ~= KEYS[4] then redis.call('DEL', old_key) end
end
redis.call('HSET', KEYS[1], 'ticket', ARGV[3])
redis.call('SET', KEYS[4], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[4], ttl) end
return 1
"#;

/// Assigns the pending handoff: `KEYS` = meta, queue; `ARGV` = agent, status_changed_at,
/// conversation id, `take` (take it from another agent) or `free`, capacity (or empty).
/// Returns `{code, previous assignee}`: 0 no conversation, -1 no pending handoff or closed,
/// 1 assigned, 2 already theirs, -2 held by another, -3 at capacity.
const ASSIGN_HANDOFF: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
if redis.call('HEXISTS', KEYS[1], 'handoff') == 0 then return {-1, ''} end
if redis.call('HGET', KEYS[1], 'status') == 'closed' then return {-1, ''} end
local previous = redis.call('HGET', KEYS[1], 'assignee')
if previous == ARGV[1] then
  if redis.call('HGET', KEYS[1], 'status') ~= 'with_agent' then
    redis.call('HSET', KEYS[1], 'status', 'with_agent', 'status_changed_at', ARGV[2])
  end
  return {2, previous}
end
if previous and ARGV[4] ~= 'take' then return {-2, previous} end
if ARGV[5] ~= '' and redis.call('ZCARD', KEYS[2] .. ':agent:' .. ARGV[1]) >= tonumber(ARGV[5]) then return {-3, ''} end
if previous then redis.call('ZREM', KEYS[2] .. ':agent:' .. previous, ARGV[3]) end
redis.call('HSET', KEYS[1], 'assignee', ARGV[1], 'status', 'with_agent', 'status_changed_at', ARGV[2])
redis.call('ZREM', KEYS[2] .. ':waiting', ARGV[3])
redis.call('ZADD', KEYS[2] .. ':agent:' .. ARGV[1], 0, ARGV[3])
return {1, previous or ''}
"#;

/// Ends the pending handoff: `KEYS` = meta, queue, outbox, outbox attempts; `ARGV` =
/// conversation id, outbox member, status_changed_at. Returns 0 without the conversation.
const RESOLVE_HANDOFF: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local assignee = redis.call('HGET', KEYS[1], 'assignee')
if assignee then redis.call('ZREM', KEYS[2] .. ':agent:' .. assignee, ARGV[1]) end
redis.call('HDEL', KEYS[1], 'handoff', 'assignee')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[2] .. ':waiting', ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
if redis.call('HGET', KEYS[1], 'status') ~= 'closed' then
  redis.call('HSET', KEYS[1], 'status', 'bot', 'status_changed_at', ARGV[3])
end
return 1
"#;

/// Sets a hash field of an existing key: `KEYS` = hash; `ARGV` = field, value, field that
/// must already exist (or empty). Returns 0 without the key, -1 without the required field.
const SET_FIELD_IF_EXISTS: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// A visitor's live conversations, oldest first, dropping index entries whose conversation
/// expired: `KEYS` = visitor index; `ARGV` = conversation key prefix.
const VISITOR_CONVERSATIONS: &str = r#"
local live = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. id .. ':meta') == 1 then
    table.insert(live, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return live
"#;

/// Erases a visitor: `KEYS` = visitor index, queue, outbox, outbox attempts; `ARGV` =
/// conversation key prefix, outbox member prefix (`S:`), ticket index key prefix. Returns the
/// number of conversations deleted.
const DELETE_VISITOR: &str = r#"
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local base = ARGV[1] .. id
  local ticket = redis.call('HGET', base .. ':meta', 'ticket')
  if ticket then
    local t = cjson.decode(ticket)
    redis.call('DEL', ARGV[3] .. t.helpdesk .. ':' .. t.id)
  end
  local assignee = redis.call('HGET', base .. ':meta', 'assignee')
  if assignee then redis.call('ZREM', KEYS[2] .. ':agent:' .. assignee, id) end
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[2] .. ':waiting', id)
  redis.call('ZREM', KEYS[3], ARGV[2] .. id)
  redis.call('HDEL', KEYS[4], ARGV[2] .. id)
  n = n + redis.call('DEL', base .. ':meta')
  redis.call('DEL', base .. ':events', base .. ':ids')
end
redis.call('DEL', KEYS[1])
return n
"#;

/// A Lua script and its SHA-1 (for `EVALSHA`).
struct Lua {
    source: &'static str,
    sha: String,
}

impl Lua {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: redis::Script::new(source).get_hash().to_string(),
        }
    }
}

struct Scripts {
    append: Lua,
    open_handoff: Lua,
    put_pending_handoff: Lua,
    claim_due_handoffs: Lua,
    retry_handoff: Lua,
    record_ticket: Lua,
    assign_handoff: Lua,
    resolve_handoff: Lua,
    touch_presence: Lua,
    create: Lua,
    set_status: Lua,
    set_field_if_exists: Lua,
    visitor_conversations: Lua,
    delete_visitor: Lua,
}

impl Scripts {
    fn new() -> Self {
        Self {
            append: Lua::new(APPEND),
            open_handoff: Lua::new(OPEN_HANDOFF),
            put_pending_handoff: Lua::new(PUT_PENDING_HANDOFF),
            claim_due_handoffs: Lua::new(CLAIM_DUE_HANDOFFS),
            retry_handoff: Lua::new(RETRY_HANDOFF),
            record_ticket: Lua::new(RECORD_TICKET),
            assign_handoff: Lua::new(ASSIGN_HANDOFF),
            resolve_handoff: Lua::new(RESOLVE_HANDOFF),
            touch_presence: Lua::new(TOUCH_PRESENCE),
            create: Lua::new(CREATE),
            set_status: Lua::new(SET_STATUS),
            set_field_if_exists: Lua::new(SET_FIELD_IF_EXISTS),
            visitor_conversations: Lua::new(VISITOR_CONVERSATIONS),
            delete_visitor: Lua::new(DELETE_VISITOR),
        }
    }
}

/// Key and channel names under `store.key_prefix` (see the module docs).
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    /// `P conv:S:` — what a conversation id is appended to (scripts build keys from it).
    fn conversation_prefix(&self, site: &SiteId) -> String {
        format!("{}conv:{}:", self.prefix, site.as_str())
    }

    /// `P conv:S:C` — the conversation's pub/sub channel and the stem of its keys.
    fn conversation(&self, site: &SiteId, id: &ConversationId) -> String {
        format!("{}{id}", self.conversation_prefix(site))
    }

    fn meta(&self, site: &SiteId, id: &ConversationId) -> String {
        format!("{}:meta", self.conversation(site, id))
    }

    fn events(&self, site: &SiteId, id: &ConversationId) -> String {
        format!("{}:events", self.conversation(site, id))
    }

    fn ids(&self, site: &SiteId, id: &ConversationId) -> String {
        format!("{}:ids", self.conversation(site, id))
    }

    /// LLM spending of a site in a month (micro-dollars, `INCRBY`).
    fn spend(&self, site: &SiteId, month: &str) -> String {
        format!("{}spend:{}:{month}", self.prefix, site.as_str())
    }

    fn visitor_prefix(&self, site: &SiteId) -> String {
        format!("{}visitor:{}:", self.prefix, site.as_str())
    }

    fn visitor(&self, site: &SiteId, visitor: &VisitorId) -> String {
        format!("{}{}", self.visitor_prefix(site), visitor.as_str())
    }

    /// Handoffs waiting for their ticket (all sites).
    fn outbox(&self) -> String {
        format!("{}outbox", self.prefix)
    }

    fn outbox_attempts(&self) -> String {
        format!("{}outbox:attempts", self.prefix)
    }

    /// `S:C`, a conversation's member of the outbox.
    fn outbox_member(site: &SiteId, id: &ConversationId) -> String {
        format!("{}:{id}", site.as_str())
    }

    fn queue(&self, site: &SiteId) -> String {
        format!("{}queue:{}", self.prefix, site.as_str())
    }

    fn presence(&self, site: &SiteId, id: &ConversationId) -> String {
        format!("{}presence:{}:{id}", self.prefix, site.as_str())
    }

    fn ticket_prefix(&self) -> String {
        format!("{}ticket:", self.prefix)
    }

    fn ticket(&self, helpdesk: &str, ticket_id: &str) -> String {
        format!("{}{helpdesk}:{ticket_id}", self.ticket_prefix())
    }
}

/// How the Redis store connects and what it keeps.
#[derive(Clone)]
pub struct RedisStoreConfig {
    /// `redis://` or `rediss://` URL; it may carry a password, so it is never logged.
    pub url: String,
    /// Prefix of every key and channel (`store.key_prefix`).
    pub key_prefix: String,
    /// Closed conversations expire this long after closing (`store.closed_ttl`).
    pub closed_ttl: Duration,
    /// Longest wait for one operation, connecting included (`store.timeout`).
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &"***")
            .field("key_prefix", &self.key_prefix)
            .field("closed_ttl", &self.closed_ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The Redis store. Cheap to clone (shared connection and pub/sub task).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    keys: Keys,
    closed_ttl: Duration,
    timeout: Duration,
    scripts: Scripts,
    /// Requests sent on the command connection (a script or a command each; the pub/sub
    /// connection's SUBSCRIBE, UNSUBSCRIBE and PING are not counted).
    round_trips: AtomicU64,
    hub: Hub,
}

/// Why a command failed, before it becomes a [`StoreError`].
enum CallError {
    Redis(RedisError),
    TimedOut,
}

impl CallError {
    fn is_no_script(&self) -> bool {
        matches!(self, Self::Redis(err) if err.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript))
    }
}

impl From<CallError> for StoreError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::TimedOut => StoreError::Timeout,
            CallError::Redis(err) => store_error(err),
        }
    }
}

/// Maps a Redis error to what a caller can act on: unreachable, loading, read-only or out of
/// memory → `Unavailable`; an I/O timeout → `Timeout`; anything else → `Other`.
fn store_error(err: RedisError) -> StoreError {
    if err.is_timeout() {
        return StoreError::Timeout;
    }
    if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
        return StoreError::Unavailable(format!("cannot reach Redis: {err}"));
    }
    match err.kind() {
        redis::ErrorKind::Server(ServerErrorKind::BusyLoading) => {
            StoreError::Unavailable("Redis is loading its data set after a restart".into())
        }
        redis::ErrorKind::Server(
            ServerErrorKind::ReadOnly
            | ServerErrorKind::MasterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown,
        ) => StoreError::Unavailable(format!("Redis cannot take writes now: {err}")),
        redis::ErrorKind::AuthenticationFailed => StoreError::Unavailable(format!(
            "Redis refused the credentials of store.redis_url: {err}"
        )),
        _ if err.code() == Some("OOM") => StoreError::Unavailable(
            "Redis is out of memory (maxmemory reached; see README.md \"Redis\")".into(),
        ),
        _ => StoreError::Other(Box::new(err)),
    }
}

fn rejected(what: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected(what.to_string())
}

fn rfc3339(at: OffsetDateTime) -> Result<String, StoreError> {
    at.format(&Rfc3339)
        .map_err(|err| rejected(format!("timestamp {at} has no RFC 3339 form: {err}")))
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn status_name(status: ConversationStatus) -> &'static str {
    status.as_str()
}

fn parse_status(raw: &str) -> Option<ConversationStatus> {
    [
        ConversationStatus::Bot,
        ConversationStatus::WaitingForAgent,
        ConversationStatus::WithAgent,
        ConversationStatus::Closed,
    ]
    .into_iter()
    .find(|status| status.as_str() == raw)
}

/// A conversation from its meta hash (`None` for an empty hash: no such key).
fn parse_conversation(
    site: &SiteId,
    id: &ConversationId,
    mut fields: HashMap<String, String>,
) -> Result<Option<Conversation>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let mut required = |name: &str| {
        fields
            .remove(name)
            .ok_or_else(|| rejected(format!("conversation {id}: field {name} is missing")))
    };
    let visitor = VisitorId::parse(&required("visitor")?).map_err(rejected)?;
    let status_raw = required("status")?;
    let status = parse_status(&status_raw)
        .ok_or_else(|| rejected(format!("conversation {id}: unknown status {status_raw:?}")))?;
    let time = |raw: String| {
        OffsetDateTime::parse(&raw, &Rfc3339)
            .map_err(|err| rejected(format!("conversation {id}: bad timestamp {raw:?}: {err}")))
    };
    let created_at = time(required("created_at")?)?;
    let status_changed_at = time(required("status_changed_at")?)?;
    let last_event_id = required("last_event_id")?
        .parse::<u64>()
        .map_err(|err| rejected(format!("conversation {id}: bad last_event_id: {err}")))?;
    let contact_email = fields
        .remove("contact_email")
        .map(|raw| EmailAddress::parse(&raw))
        .transpose()
        .map_err(|err| rejected(format!("conversation {id}: contact_email: {err}")))?;
    let csat = fields
        .remove("csat")
        .map(|raw| serde_json::from_str::<Csat>(&raw))
        .transpose()
        .map_err(|err| rejected(format!("conversation {id}: csat: {err}")))?;
    let assignee = fields.remove("assignee");
    Ok(Some(Conversation {
        site: site.clone(),
        id: *id,
        visitor,
        status,
        created_at,
        status_changed_at,
        last_event_id: EventId(last_event_id),
        user_id: fields.remove("user_id"),
        locale: fields.remove("locale"),
        page_url: fields.remove("page_url"),
        contact_email,
        csat,
        assignee,
    }))
}

/// A feedback field: `1` helpful, `0` not, `-` (an answer without feedback) or absent: none.
fn parse_feedback(raw: Option<&str>) -> Option<bool> {
    match raw {
        Some("1") => Some(true),
        Some("0") => Some(false),
        _ => None,
    }
}

fn parse_event(raw: &[u8]) -> Result<StoredEvent, StoreError> {
    serde_json::from_slice(raw).map_err(|err| rejected(format!("stored event: {err}")))
}

impl RedisStore {
    /// Connects to Redis (failing within `config.timeout` when it cannot) and starts the
    /// pub/sub task. Must run inside a tokio runtime.
    ///
    /// Errors: `Rejected` for a URL the client cannot use; `Unavailable`/`Timeout` when Redis
    /// does not answer.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|err| rejected(format!("store.redis_url is not usable: {err}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = tokio::time::timeout(
            config.timeout,
            ConnectionManager::new_with_config(client.clone(), manager_config),
        )
        .await
        .map_err(|_| StoreError::Timeout)?
        .map_err(store_error)?;
        let hub = Hub::start(client, config.timeout);
        let store = Self {
            inner: Arc::new(Inner {
                connection,
                keys: Keys {
                    prefix: config.key_prefix,
                },
                closed_ttl: config.closed_ttl,
                timeout: config.timeout,
                scripts: Scripts::new(),
                round_trips: AtomicU64::new(0),
                hub,
            }),
        };
        store.ping().await?;
        store.load_scripts().await?;
        info!(
            store.key_prefix = %store.inner.keys.prefix,
            "connected to Redis"
        );
        Ok(store)
    }

    /// Loads every script into Redis's script cache, so their first use costs no extra round
    /// trip (after a Redis restart, [`Self::eval`] reloads a script on its first use).
    async fn load_scripts(&self) -> Result<(), StoreError> {
        let scripts = &self.inner.scripts;
        for script in [
            &scripts.append,
            &scripts.open_handoff,
            &scripts.create,
            &scripts.set_status,
            &scripts.set_field_if_exists,
            &scripts.visitor_conversations,
            &scripts.delete_visitor,
        ] {
            let sha: String = self
                .query(redis::cmd("SCRIPT").arg("LOAD").arg(script.source))
                .await?;
            if sha != script.sha {
                return Err(rejected(format!(
                    "Redis hashed a script as {sha}, expected {}",
                    script.sha
                )));
            }
        }
        Ok(())
    }

    /// Requests sent to Redis on the command connection since start (each script or command
    /// is one round trip; a script's first run after a Redis restart costs two).
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// The prefix of every key and channel.
    pub fn key_prefix(&self) -> &str {
        &self.inner.keys.prefix
    }

    async fn call<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, CallError> {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut connection = self.inner.connection.clone();
        match tokio::time::timeout(self.inner.timeout, cmd.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(CallError::Redis(err)),
            Err(_) => Err(CallError::TimedOut),
        }
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        Ok(self.call(cmd).await?)
    }

    /// Runs a script by its SHA-1, sending the source once if Redis does not have it
    /// (after a restart or `SCRIPT FLUSH`).
    async fn eval<T: FromRedisValue>(
        &self,
        script: &Lua,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let build = |command: &str, head: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(head).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        match self.call(&build("EVALSHA", &script.sha)).await {
            Err(err) if err.is_no_script() => {
                debug!("loading a Lua script into Redis");
                Ok(self.call(&build("EVAL", script.source)).await?)
            }
            other => Ok(other?),
        }
    }

    async fn append(
        &self,
        site: &SiteId,
        id: &ConversationId,
        kind: &EventKind,
        at: OffsetDateTime,
        dedupe: Option<(ClientMessageId, MessageId)>,
    ) -> Result<AppendOutcome, StoreError> {
        let keys = &self.inner.keys;
        let kind_json = serde_json::to_string(kind)
            .map_err(|err| rejected(format!("event does not serialise: {err}")))?;
        let created_at = rfc3339(at)?;
        let (dedupe_field, message_id) = match dedupe {
            Some((client_id, message_id)) => (format!("m:{client_id}"), message_id.to_string()),
            None => (String::new(), String::new()),
        };
        let answer_field = match kind {
            EventKind::AssistantAnswer { answer_id, .. } => format!("a:{answer_id}"),
            _ => String::new(),
        };
        let (meta, events, ids) = (
            keys.meta(site, id),
            keys.events(site, id),
            keys.ids(site, id),
        );
        let channel = keys.conversation(site, id);
        let (code, event_id, first, status): (i64, u64, String, String) = self
            .eval(
                &self.inner.scripts.append,
                &[&meta, &events, &ids],
                &[
                    &channel,
                    &created_at,
                    &kind_json,
                    &dedupe_field,
                    &message_id,
                    &answer_field,
                    &keys.outbox(),
                    &Keys::outbox_member(site, id),
                    &unix_ms(OffsetDateTime::now_utc()).to_string(),
                ],
            )
            .await?;
        if code == 0 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
        let status = parse_status(&status)
            .ok_or_else(|| rejected(format!("conversation {id}: unknown status {status:?}")))?;
        match code {
            1 => Ok(AppendOutcome::Appended {
                event_id: EventId(event_id),
                status,
            }),
            2 => {
                let parsed = first.split_once(' ').and_then(|(message_id, event_id)| {
                    Some((
                        MessageId::parse(message_id).ok()?,
                        EventId(event_id.parse().ok()?),
                    ))
                });
                let (message_id, event_id) = parsed
                    .ok_or_else(|| rejected(format!("idempotency record {first:?} is corrupt")))?;
                Ok(AppendOutcome::Duplicate {
                    message_id,
                    event_id,
                    status,
                })
            }
            3 => Ok(AppendOutcome::Closed),
            other => Err(rejected(format!("append script returned code {other}"))),
        }
    }

    /// A JSON field of the conversation's meta hash (`None` when absent).
    async fn meta_json<T: serde::de::DeserializeOwned>(
        &self,
        site: &SiteId,
        id: &ConversationId,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.inner.keys.meta(site, id))
                    .arg(field),
            )
            .await?;
        raw.map(|raw| {
            serde_json::from_str(&raw)
                .map_err(|err| rejected(format!("conversation {id}: {field}: {err}")))
        })
        .transpose()
    }

    async fn set_status_with(
        &self,
        site: &SiteId,
        id: &ConversationId,
        status: ConversationStatus,
        at: OffsetDateTime,
        extra: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let (meta, events, ids) = (
            keys.meta(site, id),
            keys.events(site, id),
            keys.ids(site, id),
        );
        let changed_at = rfc3339(at)?;
        let ttl_ms = i64::try_from(self.inner.closed_ttl.as_millis()).unwrap_or(i64::MAX);
        let expire_at = unix_ms(at).saturating_add(ttl_ms).to_string();
        let visitor_prefix = keys.visitor_prefix(site);
        let conversation_prefix = keys.conversation_prefix(site);
        let conversation_id = id.to_string();
        let ticket_prefix = keys.ticket_prefix();
        let mut args: Vec<&str> = vec![
            status_name(status),
            &changed_at,
            &expire_at,
            &visitor_prefix,
            &conversation_prefix,
            &conversation_id,
            &ticket_prefix,
        ];
        for (field, value) in extra {
            args.push(field);
            args.push(value);
        }
        let queue = keys.queue(site);
        let found: i64 = self
            .eval(
                &self.inner.scripts.set_status,
                &[&meta, &events, &ids, &queue],
                &args,
            )
            .await?;
        if found == 0 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
        Ok(())
    }

    async fn set_field_if_exists(
        &self,
        key: &str,
        field: &str,
        value: &str,
        required_field: &str,
    ) -> Result<i64, StoreError> {
        self.eval(
            &self.inner.scripts.set_field_if_exists,
            &[key],
            &[field, value, required_field],
        )
        .await
    }

    /// Events after `after`, oldest first (the log is dense: event `n` is element `n - 1`).
    async fn read_events(
        &self,
        site: &SiteId,
        id: &ConversationId,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let start = i64::try_from(after.get()).unwrap_or(i64::MAX);
        let stop = start
            .saturating_add(i64::try_from(limit).unwrap_or(i64::MAX))
            .saturating_sub(1);
        let raw: Vec<Vec<u8>> = self
            .query(
                redis::cmd("LRANGE")
                    .arg(self.inner.keys.events(site, id))
                    .arg(start)
                    .arg(stop),
            )
            .await?;
        let mut events = Vec::with_capacity(raw.len());
        for bytes in &raw {
            let event = parse_event(bytes)?;
            // Defensive: the log is dense, but never hand back what the caller already has.
            if event.event_id > after {
                events.push(event);
            }
        }
        Ok(events)
    }
}

enum AppendOutcome {
    Appended {
        event_id: EventId,
        status: ConversationStatus,
    },
    Duplicate {
        message_id: MessageId,
        event_id: EventId,
        status: ConversationStatus,
    },
    /// A visitor message to a closed conversation: nothing stored.
    Closed,
}

#[async_trait::async_trait]
impl ConversationStore for RedisStore {
    fn adapter_name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        let keys = &self.inner.keys;
        let created_at = rfc3339(new.created_at)?;
        let score = unix_ms(new.created_at).to_string();
        let id = new.id.to_string();
        let mut args: Vec<&str> = vec![
            &id,
            &score,
            "visitor",
            new.visitor.as_str(),
            "status",
            status_name(ConversationStatus::Bot),
            "created_at",
            &created_at,
            "status_changed_at",
            &created_at,
            "last_event_id",
            "0",
        ];
        for (field, value) in [
            ("user_id", &new.user_id),
            ("locale", &new.locale),
            ("page_url", &new.page_url),
        ] {
            if let Some(value) = value {
                args.push(field);
                args.push(value);
            }
        }
        let meta = keys.meta(&new.site, &new.id);
        let visitor = keys.visitor(&new.site, &new.visitor);
        let fields: HashMap<String, String> = self
            .eval(&self.inner.scripts.create, &[&meta, &visitor], &args)
            .await?;
        parse_conversation(&new.site, &new.id, fields)?
            .ok_or_else(|| rejected(format!("conversation {} vanished on creation", new.id)))
    }

    async fn conversation(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        let fields: HashMap<String, String> = self
            .query(redis::cmd("HGETALL").arg(self.inner.keys.meta(site, id)))
            .await?;
        parse_conversation(site, id, fields)
    }

    async fn visitor_conversations(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let keys = &self.inner.keys;
        let raw: Vec<String> = self
            .eval(
                &self.inner.scripts.visitor_conversations,
                &[&keys.visitor(site, visitor)],
                &[&keys.conversation_prefix(site)],
            )
            .await?;
        raw.iter()
            .map(|id| ConversationId::parse(id).map_err(rejected))
            .collect()
    }

    async fn set_status(
        &self,
        site: &SiteId,
        id: &ConversationId,
        status: ConversationStatus,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.set_status_with(site, id, status, at, &[]).await
    }

    async fn append_visitor_message(
        &self,
        site: &SiteId,
        id: &ConversationId,
        client_message_id: ClientMessageId,
        message_id: MessageId,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<AppendedMessage, StoreError> {
        let kind = EventKind::VisitorMessage {
            message_id,
            client_message_id,
            text: text.to_string(),
        };
        match self
            .append(site, id, &kind, at, Some((client_message_id, message_id)))
            .await?
        {
            AppendOutcome::Appended { event_id, status } => Ok(AppendedMessage {
                message_id,
                event_id,
                duplicate: false,
                status,
            }),
            AppendOutcome::Duplicate {
                message_id,
                event_id,
                status,
            } => Ok(AppendedMessage {
                message_id,
                event_id,
                duplicate: true,
                status,
            }),
            AppendOutcome::Closed => Ok(AppendedMessage {
                message_id,
                event_id: EventId::ZERO,
                duplicate: false,
                status: ConversationStatus::Closed,
            }),
        }
    }

    async fn append_event(
        &self,
        site: &SiteId,
        id: &ConversationId,
        kind: EventKind,
        at: OffsetDateTime,
    ) -> Result<StoredEvent, StoreError> {
        match self.append(site, id, &kind, at, None).await? {
            AppendOutcome::Appended { event_id, .. } => Ok(StoredEvent {
                event_id,
                // The stored form keeps what RFC 3339 keeps (nanoseconds, the offset).
                created_at: at,
                kind,
            }),
            AppendOutcome::Duplicate { .. } | AppendOutcome::Closed => Err(rejected(
                "an append without an idempotency key was refused as a visitor message",
            )),
        }
    }

    async fn events_after(
        &self,
        site: &SiteId,
        id: &ConversationId,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_events(site, id, after, limit).await
    }

    async fn subscribe(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<EventStream, StoreError> {
        let channel = self.inner.keys.conversation(site, id);
        let (receiver, guard) = self.inner.hub.follow(&channel);
        self.inner.hub.confirm(&channel, self.inner.timeout).await?;
        // Subscribed: every event appended from here on reaches `receiver`; what came before
        // is in the log, up to this id.
        let last: Option<u64> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.inner.keys.meta(site, id))
                    .arg("last_event_id"),
            )
            .await?;
        let follower = Follower {
            store: self.clone(),
            site: site.clone(),
            id: *id,
            receiver,
            last_seen: EventId(last.unwrap_or(0)),
            backlog: VecDeque::new(),
            more_in_log: false,
            _guard: guard,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            follower,
            Follower::next_event,
        )))
    }

    async fn put_pending_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        handoff: PendingHandoff,
    ) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let mut fields = serde_json::to_value(&handoff)
            .map_err(|err| rejected(format!("handoff does not serialise: {err}")))?;
        if let Some(object) = fields.as_object_mut() {
            object.remove("handoff_id");
        }
        let found: i64 = self
            .eval(
                &self.inner.scripts.put_pending_handoff,
                &[
                    &keys.meta(site, id),
                    &keys.events(site, id),
                    &keys.ids(site, id),
                    &keys.queue(site),
                    &keys.outbox(),
                    &keys.outbox_attempts(),
                ],
                &[
                    &fields.to_string(),
                    &handoff.handoff_id.to_string(),
                    &rfc3339(handoff.requested_at)?,
                    &keys.visitor_prefix(site),
                    &id.to_string(),
                    &Keys::outbox_member(site, id),
                    &unix_ms(handoff.requested_at).to_string(),
                ],
            )
            .await?;
        match found {
            0 => Err(StoreError::NotFound(format!("conversation {id}"))),
            3 => Err(rejected(format!("conversation {id} is closed"))),
            _ => Ok(()),
        }
    }

    async fn open_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        announcement: EventKind,
        handoff: PendingHandoff,
    ) -> Result<OpenedHandoff, StoreError> {
        if !matches!(announcement, EventKind::Handoff { .. }) {
            return Err(rejected("a handoff is announced by a Handoff event"));
        }
        let keys = &self.inner.keys;
        let kind_json = serde_json::to_string(&announcement)
            .map_err(|err| rejected(format!("event does not serialise: {err}")))?;
        // The script puts the new event's id in; everything else is serde's own form.
        let mut fields = serde_json::to_value(&handoff)
            .map_err(|err| rejected(format!("handoff does not serialise: {err}")))?;
        if let Some(object) = fields.as_object_mut() {
            object.remove("event_id");
            object.remove("handoff_id");
        }
        let fields = fields.to_string();
        let created_at = rfc3339(handoff.requested_at)?;
        let (meta, events, ids) = (
            keys.meta(site, id),
            keys.events(site, id),
            keys.ids(site, id),
        );
        let (code, event): (i64, String) = self
            .eval(
                &self.inner.scripts.open_handoff,
                &[
                    &meta,
                    &events,
                    &ids,
                    &keys.queue(site),
                    &keys.outbox(),
                    &keys.outbox_attempts(),
                ],
                &[
                    &keys.conversation(site, id),
                    &created_at,
                    &kind_json,
                    &fields,
                    &keys.visitor_prefix(site),
                    &handoff.handoff_id.to_string(),
                    &id.to_string(),
                    &Keys::outbox_member(site, id),
                    &unix_ms(handoff.requested_at).to_string(),
                ],
            )
            .await?;
        match code {
            0 => Err(StoreError::NotFound(format!("conversation {id}"))),
            1 => Ok(OpenedHandoff::Opened(parse_event(event.as_bytes())?)),
            2 => Ok(OpenedHandoff::AlreadyPending(parse_event(
                event.as_bytes(),
            )?)),
            3 => Ok(OpenedHandoff::ConversationClosed),
            other => Err(rejected(format!("handoff script returned code {other}"))),
        }
    }

    async fn pending_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<PendingHandoff>, StoreError> {
        self.meta_json(site, id, "handoff").await
    }

    async fn record_feedback(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_id: AnswerId,
        helpful: bool,
        _at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let field = format!("a:{answer_id}");
        let value = if helpful { "1" } else { "0" };
        let outcome = self
            .set_field_if_exists(&self.inner.keys.ids(site, id), &field, value, &field)
            .await?;
        if outcome != 1 {
            return Err(StoreError::NotFound(format!("answer {answer_id}")));
        }
        Ok(())
    }

    async fn feedback_on_answers(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_ids: &[AnswerId],
    ) -> Result<Vec<Option<bool>>, StoreError> {
        if answer_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.inner.keys.ids(site, id));
        for answer_id in answer_ids {
            cmd.arg(format!("a:{answer_id}"));
        }
        let raw: Vec<Option<String>> = self.query(&cmd).await?;
        Ok(raw
            .iter()
            .map(|value| parse_feedback(value.as_deref()))
            .collect())
    }

    async fn feedback(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_id: AnswerId,
    ) -> Result<Option<bool>, StoreError> {
        let raw: Option<String> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.inner.keys.ids(site, id))
                    .arg(format!("a:{answer_id}")),
            )
            .await?;
        Ok(parse_feedback(raw.as_deref()))
    }

    async fn record_csat(
        &self,
        site: &SiteId,
        id: &ConversationId,
        csat: Csat,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&csat)
            .map_err(|err| rejected(format!("CSAT does not serialise: {err}")))?;
        let outcome = self
            .set_field_if_exists(&self.inner.keys.meta(site, id), "csat", &json, "")
            .await?;
        if outcome != 1 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
        Ok(())
    }

    async fn set_contact(
        &self,
        site: &SiteId,
        id: &ConversationId,
        email: EmailAddress,
    ) -> Result<(), StoreError> {
        let outcome = self
            .set_field_if_exists(
                &self.inner.keys.meta(site, id),
                "contact_email",
                email.as_str(),
                "",
            )
            .await?;
        if outcome != 1 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
        Ok(())
    }

    async fn delete_visitor(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
    ) -> Result<usize, StoreError> {
        let keys = &self.inner.keys;
        let n_deleted: u64 = self
            .eval(
                &self.inner.scripts.delete_visitor,
                &[
                    &keys.visitor(site, visitor),
                    &keys.queue(site),
                    &keys.outbox(),
                    &keys.outbox_attempts(),
                ],
                &[
                    &keys.conversation_prefix(site),
                    &format!("{}:", site.as_str()),
                    &keys.ticket_prefix(),
                ],
            )
            .await?;
        Ok(usize::try_from(n_deleted).unwrap_or(usize::MAX))
    }

    async fn touch_presence(
        &self,
        site: &SiteId,
        id: &ConversationId,
        socket: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let key = self.inner.keys.presence(site, id);
        let until_ms = unix_ms(until);
        let _: i64 = self
            .eval(
                &self.inner.scripts.touch_presence,
                &[&key],
                &[socket, &until_ms.to_string()],
            )
            .await?;
        Ok(())
    }

    async fn clear_presence(
        &self,
        site: &SiteId,
        id: &ConversationId,
        socket: &str,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .query(
                redis::cmd("ZREM")
                    .arg(self.inner.keys.presence(site, id))
                    .arg(socket),
            )
            .await?;
        Ok(())
    }

    async fn is_present(
        &self,
        site: &SiteId,
        id: &ConversationId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let live: i64 = self
            .query(
                redis::cmd("ZCOUNT")
                    .arg(self.inner.keys.presence(site, id))
                    .arg(format!("({}", unix_ms(now)))
                    .arg("+inf"),
            )
            .await?;
        Ok(live > 0)
    }

    async fn claim_due_handoffs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueHandoff>, StoreError> {
        let keys = &self.inner.keys;
        let claimed: Vec<String> = self
            .eval(
                &self.inner.scripts.claim_due_handoffs,
                &[&keys.outbox(), &keys.outbox_attempts()],
                &[
                    &unix_ms(now).to_string(),
                    &unix_ms(lease_until).to_string(),
                    &limit.to_string(),
                ],
            )
            .await?;
        claimed
            .chunks(2)
            .map(|pair| {
                let [member, attempts] = pair else {
                    return Err(rejected("outbox claim returned an odd list"));
                };
                let (site, conversation) = member
                    .split_once(':')
                    .ok_or_else(|| rejected(format!("outbox member {member:?}")))?;
                Ok(DueHandoff {
                    site: SiteId::parse(site).map_err(rejected)?,
                    conversation: ConversationId::parse(conversation).map_err(rejected)?,
                    attempts: attempts.parse().unwrap_or(0),
                })
            })
            .collect()
    }

    async fn retry_handoff_at(
        &self,
        site: &SiteId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let _: i64 = self
            .eval(
                &self.inner.scripts.retry_handoff,
                &[&keys.outbox(), &keys.outbox_attempts()],
                &[&Keys::outbox_member(site, id), &unix_ms(at).to_string()],
            )
            .await?;
        Ok(())
    }

    async fn drop_from_outbox(&self, site: &SiteId, id: &ConversationId) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let member = Keys::outbox_member(site, id);
        let _: i64 = self
            .query(redis::cmd("ZREM").arg(keys.outbox()).arg(&member))
            .await?;
        let _: i64 = self
            .query(redis::cmd("HDEL").arg(keys.outbox_attempts()).arg(&member))
            .await?;
        Ok(())
    }

    async fn record_ticket(
        &self,
        site: &SiteId,
        id: &ConversationId,
        ticket: HandoffTicket,
    ) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let json = serde_json::to_string(&ticket)
            .map_err(|err| rejected(format!("ticket does not serialise: {err}")))?;
        let recorded: i64 = self
            .eval(
                &self.inner.scripts.record_ticket,
                &[
                    &keys.meta(site, id),
                    &keys.outbox(),
                    &keys.outbox_attempts(),
                    &keys.ticket(&ticket.helpdesk, &ticket.id),
                ],
                &[
                    &Keys::outbox_member(site, id),
                    &ticket.handoff_id.to_string(),
                    &json,
                    &ticket.synced_through.get().to_string(),
                    &unix_ms(OffsetDateTime::now_utc()).to_string(),
                ],
            )
            .await?;
        Ok(recorded == 1)
    }

    async fn handoff_ticket(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<HandoffTicket>, StoreError> {
        self.meta_json(site, id, "ticket").await
    }

    async fn ticket_conversation(
        &self,
        helpdesk: &str,
        ticket_id: &str,
    ) -> Result<Option<(SiteId, ConversationId)>, StoreError> {
        let raw: Option<String> = self
            .query(redis::cmd("GET").arg(self.inner.keys.ticket(helpdesk, ticket_id)))
            .await?;
        let Some(raw) = raw else { return Ok(None) };
        let (site, conversation) = raw
            .split_once(':')
            .ok_or_else(|| rejected(format!("ticket index {raw:?}")))?;
        Ok(Some((
            SiteId::parse(site).map_err(rejected)?,
            ConversationId::parse(conversation).map_err(rejected)?,
        )))
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let outbox = self.inner.keys.outbox();
        let queued: u64 = self.query(redis::cmd("ZCARD").arg(&outbox)).await?;
        let first: Vec<(String, f64)> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(&outbox)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES"),
            )
            .await?;
        let oldest_due = first.first().and_then(|(_, ms)| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(*ms as i64) * 1_000_000).ok()
        });
        Ok(OutboxStats { queued, oldest_due })
    }

    async fn handoff_queue(&self, site: &SiteId) -> Result<Vec<ConversationId>, StoreError> {
        let keys = &self.inner.keys;
        let ids: Vec<String> = self
            .eval(
                &self.inner.scripts.visitor_conversations,
                &[&keys.queue(site)],
                &[&keys.conversation_prefix(site)],
            )
            .await?;
        ids.iter()
            .map(|raw| ConversationId::parse(raw).map_err(rejected))
            .collect()
    }

    async fn agent_load(&self, site: &SiteId, agent: &str) -> Result<usize, StoreError> {
        let n: u64 = self
            .query(
                redis::cmd("ZCARD").arg(format!("{}:agent:{agent}", self.inner.keys.queue(site))),
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn first_delivery(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let set: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(format!("{}delivery:{key}", self.inner.keys.prefix))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)),
            )
            .await?;
        Ok(set.is_some())
    }

    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .query(redis::cmd("DEL").arg(format!("{}delivery:{key}", self.inner.keys.prefix)))
            .await?;
        Ok(())
    }

    async fn touch_agent(&self, agent: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        let _: i64 = self
            .query(
                redis::cmd("ZADD")
                    .arg(format!("{}agents:online", self.inner.keys.prefix))
                    .arg(unix_ms(until))
                    .arg(agent),
            )
            .await?;
        Ok(())
    }

    async fn online_agents(&self, now: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        self.query(
            redis::cmd("ZRANGEBYSCORE")
                .arg(format!("{}agents:online", self.inner.keys.prefix))
                .arg(format!("({}", unix_ms(now)))
                .arg("+inf"),
        )
        .await
    }

    async fn claim_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        agent: &str,
        at: OffsetDateTime,
        take_over: bool,
        capacity: Option<usize>,
    ) -> Result<Claimed, StoreError> {
        let capacity = capacity.map(|n| n.to_string()).unwrap_or_default();
        let (code, previous): (i64, String) = self
            .eval(
                &self.inner.scripts.assign_handoff,
                &[
                    &self.inner.keys.meta(site, id),
                    &self.inner.keys.queue(site),
                ],
                &[
                    agent,
                    &rfc3339(at)?,
                    &id.to_string(),
                    if take_over { "take" } else { "free" },
                    &capacity,
                ],
            )
            .await?;
        match code {
            0 => Err(StoreError::NotFound(format!("conversation {id}"))),
            -1 => Err(rejected(format!(
                "conversation {id} has no pending handoff or is closed"
            ))),
            1 => Ok(Claimed::Assigned {
                previous: Some(previous).filter(|p| !p.is_empty()),
            }),
            2 => Ok(Claimed::AlreadyTheirs),
            -2 => Ok(Claimed::HeldBy(previous)),
            -3 => Ok(Claimed::AtCapacity),
            other => Err(rejected(format!("assign script returned code {other}"))),
        }
    }

    async fn resolve_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let found: i64 = self
            .eval(
                &self.inner.scripts.resolve_handoff,
                &[
                    &keys.meta(site, id),
                    &keys.queue(site),
                    &keys.outbox(),
                    &keys.outbox_attempts(),
                ],
                &[
                    &id.to_string(),
                    &Keys::outbox_member(site, id),
                    &rfc3339(at)?,
                ],
            )
            .await?;
        if found == 0 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
        Ok(())
    }

    async fn expires_in(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<Duration>, StoreError> {
        let ttl_ms: i64 = self
            .query(redis::cmd("PTTL").arg(self.inner.keys.meta(site, id)))
            .await?;
        match ttl_ms {
            -2 => Err(StoreError::NotFound(format!("conversation {id}"))),
            ms if ms < 0 => Ok(None),
            ms => Ok(Some(Duration::from_millis(ms.unsigned_abs()))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-instance delivery: one pub/sub connection per instance, fanned out to followers.

/// What the pub/sub task tells the followers of a conversation.
#[derive(Debug, Clone)]
enum Notice {
    /// An event published by some instance (in event-id order per conversation).
    Event(Arc<StoredEvent>),
    /// Events may have been missed (the pub/sub connection was re-established, or a payload
    /// did not parse): re-read the log.
    Resync,
}

enum HubCommand {
    /// Make sure the channel is subscribed; answer once Redis confirmed it.
    Subscribe {
        channel: String,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A follower left: unsubscribe if nobody else on this instance follows the channel.
    Unsubscribe { channel: String },
}

type Channels = Arc<Mutex<HashMap<String, broadcast::Sender<Notice>>>>;

fn lock(channels: &Channels) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Notice>>> {
    // The map holds plain senders; no invariant spans a panic, so recover the guard.
    channels
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The instance's pub/sub side: the channel map shared with the background task.
struct Hub {
    channels: Channels,
    commands: mpsc::UnboundedSender<HubCommand>,
}

/// Unsubscribes when a follower's stream is dropped.
struct FollowGuard {
    channel: String,
    commands: mpsc::UnboundedSender<HubCommand>,
}

impl Drop for FollowGuard {
    fn drop(&mut self) {
        // The task is gone only when the store is: nothing left to unsubscribe then.
        let _ = self.commands.send(HubCommand::Unsubscribe {
            channel: std::mem::take(&mut self.channel),
        });
    }
}

impl Hub {
    fn start(client: redis::Client, timeout: Duration) -> Self {
        let channels: Channels = Arc::default();
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_hub(client, Arc::clone(&channels), receiver, timeout));
        Self { channels, commands }
    }

    /// A receiver for the channel (created if new) and the guard that releases it.
    fn follow(&self, channel: &str) -> (broadcast::Receiver<Notice>, FollowGuard) {
        let receiver = lock(&self.channels)
            .entry(channel.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        let guard = FollowGuard {
            channel: channel.to_string(),
            commands: self.commands.clone(),
        };
        (receiver, guard)
    }

    /// Waits until Redis confirmed the subscription (commands are handled in order, so a
    /// channel another follower is still subscribing is confirmed after that one).
    async fn confirm(&self, channel: &str, timeout: Duration) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(HubCommand::Subscribe {
                channel: channel.to_string(),
                done,
            })
            .map_err(|_| StoreError::Unavailable("the Redis pub/sub task stopped".into()))?;
        // Queued subscriptions each take at most `timeout`; allow for one ahead of ours.
        match tokio::time::timeout(timeout * 2, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the Redis pub/sub task stopped".into(),
            )),
            Err(_) => Err(StoreError::Timeout),
        }
    }
}

/// Removes the channel's sender when nobody follows it any more; true if removed.
fn release_if_unused(channels: &Channels, channel: &str) -> bool {
    let mut map = lock(channels);
    if map
        .get(channel)
        .is_some_and(|sender| sender.receiver_count() == 0)
    {
        map.remove(channel);
        return true;
    }
    false
}

/// Why a pub/sub session ended.
enum SessionEnd {
    /// The store (every sender of commands) is gone: stop.
    StoreDropped,
    /// The connection failed or could not be made; `connected` says whether it had been up.
    Disconnected { reason: String, connected: bool },
}

/// The pub/sub task: connects, (re)subscribes every followed channel, tells followers to
/// re-read the log, then dispatches messages and handles (un)subscriptions until the
/// connection drops; then reconnects with backoff.
async fn run_hub(
    client: redis::Client,
    channels: Channels,
    mut commands: mpsc::UnboundedReceiver<HubCommand>,
    timeout: Duration,
) {
    let mut backoff = PUBSUB_BACKOFF.0;
    // Subscriptions asked for while disconnected: answered by the next connection attempt.
    let mut waiting: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
    loop {
        match pubsub_session(&client, &channels, &mut commands, &mut waiting, timeout).await {
            SessionEnd::StoreDropped => return,
            SessionEnd::Disconnected { reason, connected } => {
                for done in waiting.drain(..) {
                    let _ = done.send(Err(StoreError::Unavailable(format!(
                        "Redis pub/sub is not connected: {reason}"
                    ))));
                }
                if connected {
                    warn!(store.error = %reason, "Redis pub/sub connection lost; reconnecting");
                    backoff = PUBSUB_BACKOFF.0;
                } else {
                    debug!(store.error = %reason, "Redis pub/sub reconnection failed");
                }
            }
        }
        // Between attempts: a subscription cuts the wait short (Redis may be back; if not,
        // the attempt fails fast and so does the subscription); releases are recorded.
        let retry_at = tokio::time::Instant::now() + backoff;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(retry_at) => break,
                command = commands.recv() => match command {
                    None => return,
                    Some(HubCommand::Subscribe { done, .. }) => {
                        waiting.push(done);
                        break;
                    }
                    Some(HubCommand::Unsubscribe { channel }) => {
                        release_if_unused(&channels, &channel);
                    }
                },
            }
        }
        backoff = (backoff * 2).min(PUBSUB_BACKOFF.1);
    }
}

async fn pubsub_session(
    client: &redis::Client,
    channels: &Channels,
    commands: &mut mpsc::UnboundedReceiver<HubCommand>,
    waiting: &mut Vec<oneshot::Sender<Result<(), StoreError>>>,
    timeout: Duration,
) -> SessionEnd {
    let disconnected =
        |reason: String, connected: bool| SessionEnd::Disconnected { reason, connected };
    let pubsub = match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(err)) => return disconnected(err.to_string(), false),
        Err(_) => return disconnected("connecting timed out".into(), false),
    };
    let (mut sink, mut messages) = pubsub.split();
    // Every followed channel, including those of the waiting subscriptions.
    let wanted: Vec<String> = lock(channels).keys().cloned().collect();
    let mut confirmed: HashSet<String> = HashSet::new();
    if !wanted.is_empty() {
        match tokio::time::timeout(timeout, sink.subscribe(&wanted)).await {
            Ok(Ok(())) => confirmed.extend(wanted),
            Ok(Err(err)) => return disconnected(err.to_string(), false),
            Err(_) => return disconnected("resubscribing timed out".into(), false),
        }
    }
    for done in waiting.drain(..) {
        let _ = done.send(Ok(()));
    }
    // Whatever was appended while nothing listened is in the log.
    for sender in lock(channels).values() {
        let _ = sender.send(Notice::Resync);
    }
    debug!(
        store.n_channels = confirmed.len(),
        "Redis pub/sub connected"
    );
    let mut health = tokio::time::interval(PUBSUB_HEALTH_EVERY);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return SessionEnd::StoreDropped,
                Some(HubCommand::Subscribe { channel, done }) => {
                    if confirmed.contains(&channel) {
                        let _ = done.send(Ok(()));
                        continue;
                    }
                    match tokio::time::timeout(timeout, sink.subscribe(&channel)).await {
                        Ok(Ok(())) => {
                            confirmed.insert(channel);
                            let _ = done.send(Ok(()));
                        }
                        Ok(Err(err)) => {
                            let reason = err.to_string();
                            let _ = done.send(Err(store_error(err)));
                            return disconnected(reason, true);
                        }
                        Err(_) => {
                            let _ = done.send(Err(StoreError::Timeout));
                            return disconnected("subscribing timed out".into(), true);
                        }
                    }
                }
                Some(HubCommand::Unsubscribe { channel }) => {
                    if release_if_unused(channels, &channel) && confirmed.remove(&channel) {
                        match tokio::time::timeout(timeout, sink.unsubscribe(&channel)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(err)) => return disconnected(err.to_string(), true),
                            Err(_) => return disconnected("unsubscribing timed out".into(), true),
                        }
                    }
                }
            },
            message = messages.next() => match message {
                None => return disconnected("the connection closed".into(), true),
                Some(message) => dispatch(channels, message.get_channel_name(), message.get_payload_bytes()),
            },
            _ = health.tick() => {
                match tokio::time::timeout(timeout, sink.ping::<String>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return disconnected(err.to_string(), true),
                    Err(_) => return disconnected("PING timed out".into(), true),
                }
            }
        }
    }
}

fn dispatch(channels: &Channels, channel: &str, payload: &[u8]) {
    let notice = match parse_event(payload) {
        Ok(event) => Notice::Event(Arc::new(event)),
        Err(err) => {
            warn!(store.error = %err, "unreadable event on a pub/sub channel; followers re-read the log");
            Notice::Resync
        }
    };
    if let Some(sender) = lock(channels).get(channel) {
        // No receiver left is fine: the last follower just left.
        let _ = sender.send(notice);
    }
}

/// One subscriber's view: pub/sub notices, checked against the log by event id.
struct Follower {
    store: RedisStore,
    site: SiteId,
    id: ConversationId,
    receiver: broadcast::Receiver<Notice>,
    /// The last event handed out (or the conversation's last event when subscribing).
    last_seen: EventId,
    /// Events read from the log, not yet handed out.
    backlog: VecDeque<StoredEvent>,
    /// The last catch-up filled a whole page: read on once the backlog is out.
    more_in_log: bool,
    _guard: FollowGuard,
}

impl Follower {
    async fn next_event(mut self) -> Option<(StoredEvent, Self)> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.event_id > self.last_seen {
                    self.last_seen = event.event_id;
                    return Some((event, self));
                }
                continue;
            }
            if self.more_in_log {
                self.catch_up().await;
                continue;
            }
            match self.receiver.recv().await {
                Ok(Notice::Event(event)) if event.event_id <= self.last_seen => {}
                Ok(Notice::Event(event)) if event.event_id == self.last_seen.next() => {
                    self.last_seen = event.event_id;
                    let event = Arc::unwrap_or_clone(event);
                    return Some((event, self));
                }
                // A gap (a message lost while the connection was down), a resync, or this
                // follower fell behind its buffer: the log has everything, in order.
                Ok(Notice::Event(_) | Notice::Resync)
                | Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.catch_up().await;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the log after `last_seen`, retrying with backoff while Redis is unavailable
    /// (the socket stays usable meanwhile: this future only runs while the stream is polled).
    async fn catch_up(&mut self) {
        let mut pause = CATCH_UP_BACKOFF.0;
        loop {
            match self
                .store
                .read_events(&self.site, &self.id, self.last_seen, CATCH_UP_PAGE)
                .await
            {
                Ok(events) => {
                    self.more_in_log = events.len() == CATCH_UP_PAGE;
                    self.backlog = events.into();
                    return;
                }
                Err(err) => {
                    debug!(store.error = %err, "catching up from the event log failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(CATCH_UP_BACKOFF.1);
                }
            }
        }
    }
}

/// LLM spending is kept this long (two months: the current one is always whole).
const SPEND_TTL_SECONDS: u64 = 62 * 24 * 3600;

#[async_trait::async_trait]
impl crate::ports::spend::SpendLedger for RedisStore {
    async fn add_spend(
        &self,
        site: &SiteId,
        month: &str,
        micro_usd: u64,
    ) -> Result<u64, StoreError> {
        let key = self.inner.keys.spend(site, month);
        let total: u64 = self
            .query(redis::cmd("INCRBY").arg(&key).arg(micro_usd))
            .await?;
        let _: i64 = self
            .query(redis::cmd("EXPIRE").arg(&key).arg(SPEND_TTL_SECONDS))
            .await?;
        Ok(total)
    }

    async fn spent(&self, site: &SiteId, month: &str) -> Result<u64, StoreError> {
        let total: Option<u64> = self
            .query(redis::cmd("GET").arg(self.inner.keys.spend(site, month)))
            .await?;
        Ok(total.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::store::conformance;

    /// The test Redis: 127.0.0.1:6379 (`scripts/test` starts it).
    const TEST_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

    async fn test_store(closed_ttl: Duration) -> RedisStore {
        let prefix = format!("frontdesk-test:{}:", uuid::Uuid::new_v4().simple());
        RedisStore::connect(RedisStoreConfig {
            url: TEST_REDIS_URL.into(),
            key_prefix: prefix,
            closed_ttl,
            timeout: Duration::from_secs(2),
        })
        .await
        .unwrap_or_else(|err| {
            panic!(
                "Redis is not reachable at 127.0.0.1:6379 ({err}); start Redis: redis-server --daemonize yes --port 6379 --save '' --appendonly no"
            )
        })
    }

    /// Every key under the store's prefix, with its PTTL.
    async fn keys_with_ttl(store: &RedisStore) -> Vec<(String, i64)> {
        let pattern = format!("{}*", store.key_prefix());
        let mut connection = store.inner.connection.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut connection)
            .await
            .expect("KEYS");
        let mut out = Vec::new();
        for key in keys {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .expect("PTTL");
            out.push((key, ttl));
        }
        out.sort();
        out
    }

    async fn cleanup(store: &RedisStore) {
        let mut connection = store.inner.connection.clone();
        for (key, _) in keys_with_ttl(store).await {
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .expect("DEL");
        }
    }

    fn new_conversation(site: &SiteId, visitor: &VisitorId) -> NewConversation {
        NewConversation {
            site: site.clone(),
            id: ConversationId::generate(),
            visitor: visitor.clone(),
            user_id: Some("user-42".into()),
            locale: Some("en".into()),
            page_url: Some("https://acme.example/help".into()),
            created_at: OffsetDateTime::now_utc(),
        }
    }

    #[tokio::test]
    async fn passes_the_conversation_store_conformance_suite() {
        let closed_ttl = Duration::from_secs(3600);
        let store = test_store(closed_ttl).await;
        conformance::run_all(&store, closed_ttl).await;
        cleanup(&store).await;
    }

    #[tokio::test]
    async fn closing_sets_pexpire_on_every_key_of_the_conversation_and_reopening_removes_it() {
        let closed_ttl = Duration::from_secs(7 * 86400);
        let store = test_store(closed_ttl).await;
        let site = SiteId::parse("ttl").expect("valid");
        let visitor = VisitorId::generate();
        let first = new_conversation(&site, &visitor);
        let second = new_conversation(&site, &visitor);
        for new in [&first, &second] {
            store
                .create_conversation(new.clone())
                .await
                .expect("create");
            store
                .append_visitor_message(
                    &site,
                    &new.id,
                    ClientMessageId::generate(),
                    MessageId::generate(),
                    "hi",
                    OffsetDateTime::now_utc(),
                )
                .await
                .expect("append");
        }
        let ttl_ms = i64::try_from(closed_ttl.as_millis()).expect("fits");
        let slack_ms = 10_000;
        let stem = |id: &ConversationId| store.inner.keys.conversation(&site, id);
        let visitor_key = store.inner.keys.visitor(&site, &visitor);

        // Open: nothing expires.
        assert!(
            keys_with_ttl(&store)
                .await
                .iter()
                .all(|(_, ttl)| *ttl == -1),
            "{:?}",
            keys_with_ttl(&store).await
        );

        // Closing one: its three keys expire closed_ttl from now; the other conversation
        // and the visitor index (the visitor still has an open conversation) do not.
        store
            .set_status(
                &site,
                &first.id,
                ConversationStatus::Closed,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("close");
        for (key, ttl) in keys_with_ttl(&store).await {
            if key.starts_with(&stem(&first.id)) {
                assert!(
                    ttl <= ttl_ms && ttl > ttl_ms - slack_ms,
                    "{key} expires in {ttl} ms, expected about {ttl_ms}"
                );
            } else {
                assert_eq!(ttl, -1, "{key} must not expire");
            }
        }

        // Closing the last open one: the visitor index expires with it.
        store
            .set_status(
                &site,
                &second.id,
                ConversationStatus::Closed,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("close");
        let ttls = keys_with_ttl(&store).await;
        assert_eq!(
            ttls.len(),
            7,
            "3 keys per conversation + the visitor index: {ttls:?}"
        );
        for (key, ttl) in &ttls {
            assert!(
                *ttl <= ttl_ms && *ttl > ttl_ms - slack_ms,
                "{key} expires in {ttl} ms"
            );
        }

        // A key created after closing (feedback on an answer creates nothing new, but an
        // answer in a conversation without ids would) inherits the expiry.
        let third = new_conversation(&site, &VisitorId::generate());
        store
            .create_conversation(third.clone())
            .await
            .expect("create");
        store
            .set_status(
                &site,
                &third.id,
                ConversationStatus::Closed,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("close");
        store
            .append_event(
                &site,
                &third.id,
                EventKind::ConversationClosed {
                    csat_requested: false,
                },
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("append");
        let events_ttl = keys_with_ttl(&store)
            .await
            .into_iter()
            .find(|(key, _)| *key == store.inner.keys.events(&site, &third.id))
            .expect("events key")
            .1;
        assert!(events_ttl > ttl_ms - slack_ms, "{events_ttl}");

        // Reopening the first: its keys and the visitor index persist again.
        store
            .set_status(
                &site,
                &first.id,
                ConversationStatus::WithAgent,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("reopen");
        for (key, ttl) in keys_with_ttl(&store).await {
            if key.starts_with(&stem(&first.id)) || key == visitor_key {
                assert_eq!(ttl, -1, "{key} persists once reopened");
            }
        }
        cleanup(&store).await;
    }

    #[tokio::test]
    async fn delete_visitor_leaves_no_key_of_theirs() {
        let store = test_store(Duration::from_secs(60)).await;
        let site = SiteId::parse("gdpr").expect("valid");
        let visitor = VisitorId::generate();
        let other = new_conversation(&site, &VisitorId::generate());
        store
            .create_conversation(other.clone())
            .await
            .expect("create");
        let mut theirs = Vec::new();
        for _ in 0..3 {
            let new = new_conversation(&site, &visitor);
            store
                .create_conversation(new.clone())
                .await
                .expect("create");
            store
                .append_visitor_message(
                    &site,
                    &new.id,
                    ClientMessageId::generate(),
                    MessageId::generate(),
                    "hi",
                    OffsetDateTime::now_utc(),
                )
                .await
                .expect("append");
            theirs.push(new.id);
        }
        assert_eq!(
            store.delete_visitor(&site, &visitor).await.expect("delete"),
            3
        );
        let left: Vec<String> = keys_with_ttl(&store)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(
            left.iter()
                .all(|key| key.contains(&other.id.to_string())
                    || key.contains(other.visitor.as_str())),
            "only the other visitor's keys remain: {left:?}"
        );
        assert_eq!(
            left.len(),
            2,
            "the other conversation's meta and index: {left:?}"
        );
        cleanup(&store).await;
    }

    #[tokio::test]
    async fn a_follower_fills_a_gap_from_the_log_when_a_notice_is_lost() {
        let store = test_store(Duration::from_secs(60)).await;
        let site = SiteId::parse("gap").expect("valid");
        let new = new_conversation(&site, &VisitorId::generate());
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let mut stream = store.subscribe(&site, &new.id).await.expect("subscribe");
        let agent_message = |text: &str| EventKind::AgentMessage {
            message_id: MessageId::generate(),
            agent_name: "Ada".into(),
            text: text.into(),
        };
        let now = OffsetDateTime::now_utc();
        store
            .append_event(&site, &new.id, agent_message("one"), now)
            .await
            .expect("append");
        // Events 2 and 3 reach the log without a pub/sub notice (as if published while this
        // instance's pub/sub connection was down).
        let mut connection = store.inner.connection.clone();
        for n in 2..=3u64 {
            let event = StoredEvent {
                event_id: EventId(n),
                created_at: now,
                kind: agent_message("lost notice"),
            };
            let _: i64 = redis::cmd("HINCRBY")
                .arg(store.inner.keys.meta(&site, &new.id))
                .arg("last_event_id")
                .arg(1)
                .query_async(&mut connection)
                .await
                .expect("HINCRBY");
            let _: i64 = redis::cmd("RPUSH")
                .arg(store.inner.keys.events(&site, &new.id))
                .arg(serde_json::to_string(&event).expect("serialises"))
                .query_async(&mut connection)
                .await
                .expect("RPUSH");
        }
        store
            .append_event(&site, &new.id, agent_message("four"), now)
            .await
            .expect("append");
        let mut seen = Vec::new();
        while seen.len() < 4 {
            let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("events keep coming")
                .expect("stream open");
            seen.push(event.event_id.get());
        }
        assert_eq!(
            seen,
            vec![1, 2, 3, 4],
            "the gap is read from the log, in order"
        );
        cleanup(&store).await;
    }

    #[tokio::test]
    async fn followers_on_two_instances_see_each_others_events() {
        let first = test_store(Duration::from_secs(60)).await;
        // A second instance: its own connections and pub/sub task, the same prefix.
        let second = RedisStore::connect(RedisStoreConfig {
            url: TEST_REDIS_URL.into(),
            key_prefix: first.key_prefix().to_string(),
            closed_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
        })
        .await
        .expect("connects");
        let site = SiteId::parse("pair").expect("valid");
        let new = new_conversation(&site, &VisitorId::generate());
        first
            .create_conversation(new.clone())
            .await
            .expect("create");
        let mut on_first = first.subscribe(&site, &new.id).await.expect("subscribe");
        let mut on_second = second.subscribe(&site, &new.id).await.expect("subscribe");
        let now = OffsetDateTime::now_utc();
        second
            .append_visitor_message(
                &site,
                &new.id,
                ClientMessageId::generate(),
                MessageId::generate(),
                "from B",
                now,
            )
            .await
            .expect("append on B");
        first
            .append_visitor_message(
                &site,
                &new.id,
                ClientMessageId::generate(),
                MessageId::generate(),
                "from A",
                now,
            )
            .await
            .expect("append on A");
        for stream in [&mut on_first, &mut on_second] {
            let mut texts = Vec::new();
            for _ in 0..2 {
                let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
                    .await
                    .expect("delivered across instances")
                    .expect("stream open");
                if let EventKind::VisitorMessage { text, .. } = event.kind {
                    texts.push((event.event_id.get(), text));
                }
            }
            assert_eq!(
                texts,
                vec![(1, "from B".to_string()), (2, "from A".to_string())]
            );
        }
        cleanup(&first).await;
    }

    #[tokio::test]
    async fn a_read_and_two_appends_cost_one_round_trip_each() {
        // One round trip per store call (scripts are preloaded at connect). The engine's whole
        // turn (4 round trips) is asserted end to end in tests/redis_store.rs.
        let store = test_store(Duration::from_secs(60)).await;
        let site = SiteId::parse("rt").expect("valid");
        let new = new_conversation(&site, &VisitorId::generate());
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        store
            .append_visitor_message(
                &site,
                &new.id,
                ClientMessageId::generate(),
                MessageId::generate(),
                "warm-up",
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("append");
        let before = store.round_trips();
        store.conversation(&site, &new.id).await.expect("get");
        store
            .append_visitor_message(
                &site,
                &new.id,
                ClientMessageId::generate(),
                MessageId::generate(),
                "q",
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("append");
        store
            .append_event(
                &site,
                &new.id,
                EventKind::AgentMessage {
                    message_id: MessageId::generate(),
                    agent_name: "Ada".into(),
                    text: "hello".into(),
                },
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("append");
        assert_eq!(store.round_trips() - before, 3);
        cleanup(&store).await;
    }

    #[tokio::test]
    async fn a_missing_redis_fails_fast_with_unavailable() {
        // A port nothing listens on (bound then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let started = std::time::Instant::now();
        let result = RedisStore::connect(RedisStoreConfig {
            url: format!("redis://127.0.0.1:{port}/0"),
            key_prefix: "nobody:".into(),
            closed_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
        })
        .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{:?}",
            result.err()
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
