//! The Lua scripts of the Redis back end. Each check-and-set is one script (atomic on the
//! server), and every script that touches two keys touches keys with the same `{hash tag}`,
//! so they also run on Redis Cluster.
//!
//! The scripts that issue or fence (acquire, raise a mark, take counter values or timestamps)
//! take the store identity as an optional last key and argument: on standalone Redis the node
//! passes them, and the script refuses (returns the `REGRESSED` reply) unless the identity key
//! still holds the token the node works under, so a store that restarted empty or was
//! flushed cannot hand out values again. On Redis Cluster the identity lives in another slot,
//! and the node checks it on its own (see `mod.rs`).

use deadpool_redis::redis::Script;

/// What a script answers when the store identity is missing or changed.
pub const REGRESSED: i64 = -2;

/// Lease a worker id: `SET NX PX` (or refresh if we already hold it) and read its mark.
pub const ACQUIRE: &str = r"
if KEYS[3] and redis.call('GET', KEYS[3]) ~= ARGV[3] then return -2 end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return tonumber(redis.call('GET', KEYS[2]) or '0')
";

/// Renew a lease we hold; 1 renewed, 0 lost (expired or someone else's).
pub const RENEW: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Raise a worker's mark while holding its lease: -1 if the lease is not ours; otherwise the
/// mark, raised to `target` unless it is already at `needed` or above.
pub const RAISE_WORKER_MARK: &str = r"
if KEYS[3] and redis.call('GET', KEYS[3]) ~= ARGV[4] then return -2 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current >= tonumber(ARGV[2]) then return current end
redis.call('SET', KEYS[2], ARGV[3])
return tonumber(ARGV[3])
";

/// At a clean shutdown: set the mark to what was really issued and release the lease.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
";

/// A one-key high-water mark: the value, raised to `target` unless already at `needed`.
/// Used for the timestamp mark and to seed counters (INCR then continues above it).
pub const RAISE_MARK: &str = r"
if KEYS[2] and redis.call('GET', KEYS[2]) ~= ARGV[3] then return -2 end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= tonumber(ARGV[1]) then return current end
redis.call('SET', KEYS[1], ARGV[2])
return tonumber(ARGV[2])
";

/// `INCRBY count` on a counter: `{1, value}`, or `{0, 0}` when the store identity is wrong.
pub const INCR: &str = r"
if KEYS[2] and redis.call('GET', KEYS[2]) ~= ARGV[2] then return {0, 0} end
return {1, redis.call('INCRBY', KEYS[1], ARGV[1])}
";

/// `count` timestamp ids shared by every node: the first is `max(now_ms, last + 1)` (the
/// node's clock), the last becomes the mark. `{1, first}`, or `{0, 0}` for a wrong identity.
pub const TIMESTAMPS: &str = r"
if KEYS[2] and redis.call('GET', KEYS[2]) ~= ARGV[3] then return {0, 0} end
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = math.max(tonumber(ARGV[2]), last + 1)
redis.call('SET', KEYS[1], string.format('%d', first + tonumber(ARGV[1]) - 1))
return {1, first}
";

/// The store identity: created with the node's token unless one exists; the one in force.
pub const IDENTITY: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}
";

/// GCRA on the Redis server's clock (so nodes with skewed clocks share one bucket), taking up
/// to `want` tokens at once: a node asks for a slice and serves it locally (see
/// `rate_limit/shared.rs`). Tokens are charged when granted, so a slice counts against the bucket
/// at once, used or not. With `want` = 1 this is the classic one-request GCRA.
/// ARGV: emission interval (µs), burst, want (>= 1). Returns {1, granted, tokens left} or
/// {0, 0, wait µs}: when not even one token fits, the wait until one does.
pub const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local grant = math.min(want, math.floor((tolerance - (tat - now)) / interval))
if grant < 1 then
  return {0, 0, tat + interval - tolerance - now}
end
local new_tat = tat + grant * interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, grant, math.floor((tolerance - (new_tat - now)) / interval)}
";

/// A key's daily quota, all or nothing: spends ARGV[1] of ARGV[2] in KEYS[1] (one key per key
/// name and UTC day, gone two days later). Returns 1 when spent, 0 when fewer were left.
pub const QUOTA: &str = r"
local want = tonumber(ARGV[1])
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + want > tonumber(ARGV[2]) then
  return 0
end
redis.call('INCRBY', KEYS[1], want)
redis.call('EXPIRE', KEYS[1], 172800)
return 1
";

/// Every script, loaded once per store (EVALSHA, falling back to SCRIPT LOAD on NOSCRIPT).
pub struct Scripts {
    pub acquire: Script,
    pub renew: Script,
    pub raise_worker_mark: Script,
    pub release: Script,
    pub raise_mark: Script,
    pub incr: Script,
    pub timestamps: Script,
    pub identity: Script,
    pub gcra: Script,
    pub quota: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            raise_worker_mark: Script::new(RAISE_WORKER_MARK),
            release: Script::new(RELEASE),
            raise_mark: Script::new(RAISE_MARK),
            incr: Script::new(INCR),
            timestamps: Script::new(TIMESTAMPS),
            identity: Script::new(IDENTITY),
            gcra: Script::new(GCRA),
            quota: Script::new(QUOTA),
        }
    }
}
