// CELLBLOCK_TRUSTED_PROXIES as fastify's proxy check (@fastify/proxy-addr) takes it: a list whose
// networks together hold every address of a family trusts every client of that family to name
// its own address in X-Forwarded-For, as a /0 network would. Networks count as the check matches
// them: an IPv4-mapped IPv6 network (::ffff:0.0.0.0/96, or one within it) as the IPv4 addresses it
// maps, since the check matches an IPv4 peer against it (and a mapped peer as IPv4); any other
// IPv6 network only for IPv6 peers that are not IPv4-mapped.
import net from 'node:net';
import { parseSubnet } from '../queue/outbound.js';

export type AddressFamily = 'IPv4' | 'IPv6';

/** A family every address of which the networks together hold, and those of its networks. */
export interface WholeFamily {
  family: AddressFamily;
  entries: string[];
  /** Whether an IPv4-mapped IPv6 network is among them (counted as IPv4). */
  mapped: boolean;
}

/** Addresses from `start` to `end`, both included. */
interface Span {
  start: bigint;
  end: bigint;
}

const IPV4_BITS = 32;
const IPV6_BITS = 128;
/** ::ffff:0.0.0.0/96, the IPv4-mapped addresses: the proxy check takes them as IPv4. */
const MAPPED_PREFIX = 96;
const MAPPED: Span = { start: 0xffffn << 32n, end: (0xffffn << 32n) | 0xffff_ffffn };

/** An address's bits: 32 of an IPv4 one, 128 of an IPv6 one. */
function addressBits(address: string): bigint {
  if (net.isIPv4(address)) return address.split('.').reduce((bits, part) => (bits << 8n) | BigInt(part), 0n);
  let text = address;
  // An IPv4 address as the last 32 bits (::ffff:192.0.2.7): two groups.
  const quad = /\d+\.\d+\.\d+\.\d+$/.exec(text);
  if (quad) {
    const low = addressBits(quad[0]);
    text = `${text.slice(0, quad.index)}${(low >> 16n).toString(16)}:${(low & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const given = tail === undefined ? groups(head) : [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill('0'), ...groups(tail)];
  return given.reduce((bits, group) => (bits << 16n) | BigInt(`0x${group}`), 0n);
}

function spanOf(bits: bigint, prefix: number, width: number): Span {
  const hostBits = BigInt(width - prefix);
  const start = (bits >> hostBits) << hostBits;
  return { start, end: start + (1n << hostBits) - 1n };
}

/** Whether `spans` together hold every address from `from` to `to`. */
function holds(spans: readonly Span[], from: bigint, to: bigint): boolean {
  let next = from;
  for (const span of [...spans].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    if (span.end < next) continue;
    if (span.start > next) return false;
    next = span.end + 1n;
    if (next > to) return true;
  }
  return next > to;
}

/** Whether `entry` (parseSubnet's, checked already) is an IPv4-mapped IPv6 network shorter than
 * /96 (::ffff:0:0/80): the proxy check matches an IPv4 peer only against a mapped network that
 * covers the whole ::ffff: marker, and a native IPv6 peer never against a mapped network, so such
 * an entry matches no peer at all. */
export function isShortMappedNetwork(entry: string): boolean {
  const { address, prefix, family } = parseSubnet(entry);
  return family === 'ipv6' && !address.includes('%') && addressBits(address) >> 32n === 0xffffn && prefix < MAPPED_PREFIX;
}

/** The families whose every address `entries` (parseSubnet's, checked already) hold together. */
export function wholeFamilies(entries: readonly string[]): WholeFamily[] {
  const ipv4: { entry: string; span: Span; mapped: boolean }[] = [];
  const ipv6: { entry: string; span: Span }[] = [];
  for (const entry of entries) {
    const { address, prefix, family } = parseSubnet(entry);
    // A zone's network (fe80::/10%eth0) matches only peers of that zone.
    if (address.includes('%')) continue;
    const bits = addressBits(address);
    if (family === 'ipv4') {
      ipv4.push({ entry, span: spanOf(bits, prefix, IPV4_BITS), mapped: false });
    } else if (bits >> 32n === 0xffffn) {
      // A mapped network shorter than /96 matches no peer at all in the check (isShortMappedNetwork).
      if (prefix >= MAPPED_PREFIX) ipv4.push({ entry, span: spanOf(bits & 0xffff_ffffn, prefix - MAPPED_PREFIX, IPV4_BITS), mapped: true });
    } else {
      ipv6.push({ entry, span: spanOf(bits, prefix, IPV6_BITS) });
    }
  }
  const whole: WholeFamily[] = [];
  if (holds(ipv4.map((network) => network.span), 0n, (1n << 32n) - 1n)) {
    whole.push({ family: 'IPv4', entries: ipv4.map((network) => network.entry), mapped: ipv4.some((network) => network.mapped) });
  }
  const ipv6Spans = ipv6.map((network) => network.span);
  if (holds(ipv6Spans, 0n, MAPPED.start - 1n) && holds(ipv6Spans, MAPPED.end + 1n, (1n << 128n) - 1n)) {
    whole.push({ family: 'IPv6', entries: ipv6.map((network) => network.entry), mapped: false });
  }
  return whole;
}
