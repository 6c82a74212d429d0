// The live sockets of every API process, counted per client in Redis, so that a client's cap
// (CELLBLOCK_MAX_LIVE_SESSIONS_PER_CLIENT, or its key's own) holds across API machines: counted in
// each process's memory, N API machines behind a balancer allowed N times it. One sorted set per
// client (keys.ts, liveSockets), its members the sockets' ids, each scored with the moment its
// claim lapses unless the API holding it renews it: an API that dies (or an upgrade that never
// became a socket) lets go of its claims within one lease, with no one to clean up after it. The
// moments are Redis's own clock (TIME), never one API machine's.
import type { Redis } from 'ioredis';
import { sha256Hex } from '../digest.js';
import type { RedisKeys } from './keys.js';

/** The set lives as long as its longest claim: its expiry is only ever pushed later (claims of
 * API versions with other leases may share it). */
const KEEP_SET = `
local function keepSet(key, untilMs, nowMs)
  if redis.call('PTTL', key) < untilMs - nowMs then redis.call('PEXPIRE', key, untilMs - nowMs) end
end
`;

/** A claim on one of the client's places: lapsed ones dropped first, then taken if one is free. */
const CLAIM = `${KEEP_SET}
redis.replicate_commands()
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], nowMs + tonumber(ARGV[3]), ARGV[1])
keepSet(KEYS[1], nowMs + tonumber(ARGV[3]), nowMs)
return 1
`;

/** Each claim (KEYS[i], ARGV[i + 1]) held one lease longer; one that lapsed (Redis away longer
 * than a lease) is made again, since its socket is still open. A released claim is not: its API
 * renews only its open sockets' and sends a release after the last renewal that named it, on the
 * same connection. */
const RENEW = `${KEEP_SET}
redis.replicate_commands()
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local leaseMs = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, nowMs + leaseMs, ARGV[i + 1])
  keepSet(key, nowMs + leaseMs, nowMs)
end
return #KEYS
`;

export interface LiveSocketClaim {
  client: string;
  socketId: string;
}

export class LiveSocketLedger {
  constructor(
    private readonly redis: Pick<Redis, 'eval' | 'zrem'>,
    private readonly keys: RedisKeys,
  ) {}

  /** The client's set, named by a digest: a client id holds its API key. */
  private setOf(client: string): string {
    return this.keys.liveSockets(sha256Hex(client));
  }

  /** Takes one of `client`'s `maximum` places for `socketId`, for `leaseMs` unless renewed;
   * false when they are all taken. */
  async claim(claim: LiveSocketClaim, maximum: number, leaseMs: number): Promise<boolean> {
    return (await this.redis.eval(CLAIM, 1, this.setOf(claim.client), claim.socketId, maximum, leaseMs)) === 1;
  }

  async release(claim: LiveSocketClaim): Promise<void> {
    await this.redis.zrem(this.setOf(claim.client), claim.socketId);
  }

  /** Holds every claim one lease longer (one round trip for all). */
  async renew(claims: LiveSocketClaim[], leaseMs: number): Promise<void> {
    if (claims.length === 0) return;
    await this.redis.eval(RENEW, claims.length, ...claims.map((claim) => this.setOf(claim.client)), leaseMs, ...claims.map((claim) => claim.socketId));
  }
}
