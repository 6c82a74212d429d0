// Where the service's own outgoing requests may go: /v1 webhooks and Judge0 callbacks, both sent
// by workers (the API refuses a URL naming a refused address up front). Their URLs come from
// submissions, so without a bound a submitter could make the service send to any address its
// hosts reach — a cloud's metadata service (169.254.169.254), an admin port on loopback — a blind
// request forgery. The operator names the networks a destination may be in
// (CELLBLOCK_WEBHOOK_ALLOW, default: anywhere) and those it may not (CELLBLOCK_WEBHOOK_DENY,
// default: link-local, where metadata services live).
//
// The check is on the address actually connected to: a host name is resolved by the request's
// own lookup, which hands the socket only permitted addresses, so a name that resolves to a
// permitted address when checked and to another when used (DNS rebinding) gains nothing.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export const DEFAULT_WEBHOOK_DENY = ['169.254.0.0/16', 'fe80::/10'];
/** Addresses that mean this host when connected to (0.0.0.0, ::): refused whatever the lists say,
 * since a deny list of loopback would not name them, and no receiver is reached by them. */
const THIS_HOST = ['0.0.0.0/8', '::/128'];

/** A destination outside the permitted networks: final, never retried. */
export class OutboundRefusedError extends Error {
  override readonly name = 'OutboundRefusedError';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(
      host === address
        ? `${address} is not a permitted destination (CELLBLOCK_WEBHOOK_ALLOW, CELLBLOCK_WEBHOOK_DENY)`
        : `${host} resolves to ${address}, not a permitted destination (CELLBLOCK_WEBHOOK_ALLOW, CELLBLOCK_WEBHOOK_DENY)`,
    );
  }
}

interface Subnet {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** "10.0.0.0/8", "fd00::/8", or one address ("192.0.2.7": a /32); throws a message naming the entry. */
export function parseSubnet(text: string): Subnet {
  const [address = '', prefixText, extra] = text.trim().split('/');
  const version = net.isIP(address);
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const widest = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? widest : Number(prefixText);
  if (version === 0 || extra !== undefined || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) || prefix > widest) {
    throw new Error(`"${text.trim()}" is not an address or a network (ADDRESS/PREFIX)`);
  }
  return { address, prefix, family };
}

export class OutboundPolicy {
  private readonly allowed = new net.BlockList();
  private readonly denied = new net.BlockList();
  private readonly thisHost = new net.BlockList();

  /** `allow`: networks a destination must be in (empty: any); `deny`: networks it must not be in. */
  constructor(
    readonly allow: readonly string[] = [],
    readonly deny: readonly string[] = DEFAULT_WEBHOOK_DENY,
  ) {
    for (const subnet of allow.map(parseSubnet)) this.allowed.addSubnet(subnet.address, subnet.prefix, subnet.family);
    for (const subnet of deny.map(parseSubnet)) this.denied.addSubnet(subnet.address, subnet.prefix, subnet.family);
    for (const subnet of THIS_HOST.map(parseSubnet)) this.thisHost.addSubnet(subnet.address, subnet.prefix, subnet.family);
  }

  /** Whether an IP address may be connected to. IPv4-mapped IPv6 addresses count as their IPv4. */
  permits(address: string): boolean {
    const family = net.isIPv4(address) ? 'ipv4' : 'ipv6';
    if (this.thisHost.check(address, family) || this.denied.check(address, family)) return false;
    return this.allow.length === 0 || this.allowed.check(address, family);
  }

  /** The refusal of a URL whose host is an IP address outside the permitted networks; undefined for
   * a permitted address or a host name (checked when it is resolved). */
  refusalOf(url: URL): OutboundRefusedError | undefined {
    const address = literalAddress(url);
    return address !== undefined && !this.permits(address) ? new OutboundRefusedError(address, address) : undefined;
  }

  /** dns.lookup, keeping only permitted addresses; none left is an OutboundRefusedError. */
  readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const permitted = addresses.filter((entry) => this.permits(entry.address));
      const first = permitted[0];
      if (!first) {
        const refused = new OutboundRefusedError(hostname, addresses[0]?.address ?? '') as unknown as NodeJS.ErrnoException;
        return callback(refused, '', 0);
      }
      // net asks for every address when it tries the families in turn (autoSelectFamily).
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, permitted);
      return callback(null, first.address, first.family);
    });
  };
}

/** The URL's host as an IP address, or undefined for a host name. */
function literalAddress(url: URL): string | undefined {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return net.isIP(host) ? host : undefined;
}

export interface OutboundRequest {
  method: 'POST' | 'PUT';
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

/** Sends one request to a permitted destination and resolves with the answer's status as soon as
 * it arrives: its body is read and dropped after, and a body cut short or slow changes nothing
 * (the receiver has answered). Redirects are answers like any other: never followed. Rejects with
 * OutboundRefusedError before connecting anywhere else, or with the request's own error. */
export function sendOutbound(policy: OutboundPolicy, target: string, request: OutboundRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(target);
    const refusal = policy.refusalOf(url);
    if (refusal) return reject(refusal);
    const client = url.protocol === 'https:' ? https : http;
    const outgoing = client.request(
      url,
      {
        method: request.method,
        headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
        lookup: policy.lookup,
        signal: request.signal,
        agent: false,
      },
      (response) => {
        resolve(response.statusCode ?? 0);
        response.on('error', () => {});
        response.resume();
      },
    );
    outgoing.on('error', reject);
    outgoing.end(request.body);
  });
}
