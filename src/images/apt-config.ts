// Where the Debian packages come from: the host machine's own apt configuration (deb822
// `/etc/apt/sources.list.d/*.sources` or one-line `/etc/apt/sources.list`), or the env var
// CELLBLOCK_DEBIAN_MIRROR. No mirror host is ever written into the repository: the machine that
// builds the images decides.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStoreError } from './errors.js';

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
}

export interface AptSetup {
  /** The Debian archive debootstrap fetches the base from. */
  mirror: string;
  /** Sources the chroot's apt uses while a layer is built (the suite and its -updates/-security). */
  sources: AptSource[];
  /** apt.conf lines carried over from the host (validity checks, proxies, retries). */
  aptConf: string[];
  /** Where the mirror came from, for progress messages. */
  origin: string;
}

/** Parses deb822 `.sources` text into its `deb` entries (deb-src and disabled stanzas skipped). */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      if (/^\s/.test(line) && last) {
        fields.set(last, `${fields.get(last)} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const words = (key: string): string[] => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb') || fields.get('enabled')?.toLowerCase() === 'no') continue;
    for (const uri of words('uris')) {
      sources.push({ uri, suites: words('suites'), components: words('components') });
    }
  }
  return sources;
}

/** Parses one-line `deb [options] uri suite components...` entries. */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').replace(/\[[^\]]*\]/, '').trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (type !== 'deb' || !uri || !suite) continue;
    sources.push({ uri, suites: [suite], components });
  }
  return sources;
}

/** Schemes debootstrap and the chroot's plain apt can fetch from. */
const FETCHABLE_URI = /^(https?|file):\/\/\S+$/;

/**
 * A source's URI as debootstrap and a bare chroot can use it. apt's mirror method
 * (`mirror+file:///etc/apt/mirrors/debian.list`, as Debian's cloud images configure it) names a
 * host file listing mirrors, one URI first on each line: the first is taken. Anything else that is
 * not http(s) or file (`mirror+http`, `tor+http`, `cdrom:`) is refused with what to do instead.
 */
export function fetchableUri(uri: string): string {
  if (FETCHABLE_URI.test(uri)) return uri;
  const list = /^mirror\+file:\/\/(\/\S+)$/.exec(uri)?.[1];
  if (list) {
    let text: string;
    try {
      text = readFileSync(list, 'utf8');
    } catch (err) {
      throw new ImageStoreError(`apt source "${uri}": cannot read its mirror list (${(err as NodeJS.ErrnoException).code}); set CELLBLOCK_DEBIAN_MIRROR to a Debian mirror URI`);
    }
    const first = text.split('\n').map((line) => line.replace(/#.*$/, '').trim().split(/\s+/)[0]).find((word) => word);
    if (first && FETCHABLE_URI.test(first)) return first;
    throw new ImageStoreError(`apt source "${uri}": its mirror list ${list} names no http(s):// or file:// mirror first; set CELLBLOCK_DEBIAN_MIRROR to a Debian mirror URI`);
  }
  throw new ImageStoreError(`apt source "${uri}": debootstrap fetches only http(s):// and file:// URIs; set CELLBLOCK_DEBIAN_MIRROR to a Debian mirror URI`);
}

function hostSources(etcApt: string): AptSource[] {
  const sources: AptSource[] = [];
  const list = join(etcApt, 'sources.list');
  if (existsSync(list)) sources.push(...parseOneLineSources(readFileSync(list, 'utf8')));
  const dir = join(etcApt, 'sources.list.d');
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, name), 'utf8');
      if (name.endsWith('.sources')) sources.push(...parseDeb822Sources(text));
      else if (name.endsWith('.list')) sources.push(...parseOneLineSources(text));
    }
  }
  return sources;
}

/** The host's apt options that decide whether a fetch works here (validity of snapshot
 * Release files, proxies, retries); everything else of the host's config stays out. */
function hostAptConf(): string[] {
  let dump: string;
  try {
    dump = execFileSync('apt-config', ['dump'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return [];
  }
  const carried = /^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy|Retries|https?::Timeout|ForceIPv4) /i;
  return dump.split('\n').filter((line) => carried.test(line));
}

/**
 * The apt setup for building `suite` layers. CELLBLOCK_DEBIAN_MIRROR (a URI) overrides the
 * host's configuration; otherwise the host's sources must name `suite` (a Debian host of the
 * same release), and its `-updates`/`-security` entries are used too.
 */
export function resolveAptSetup(
  suite: string,
  env: NodeJS.ProcessEnv = process.env,
  etcApt = '/etc/apt',
): AptSetup {
  const aptConf = hostAptConf();
  const override = env.CELLBLOCK_DEBIAN_MIRROR?.trim();
  if (override) {
    if (!FETCHABLE_URI.test(override)) {
      throw new ImageStoreError(`CELLBLOCK_DEBIAN_MIRROR is not an http(s):// or file:// URI: "${override}"`);
    }
    return {
      mirror: override,
      sources: [{ uri: override, suites: [suite, `${suite}-updates`], components: ['main'] }],
      aptConf,
      origin: 'CELLBLOCK_DEBIAN_MIRROR',
    };
  }
  const related = hostSources(etcApt)
    .map((s) => ({ ...s, suites: s.suites.filter((x) => x === suite || x.startsWith(`${suite}-`)) }))
    .filter((s) => s.suites.length > 0);
  const archive = related.find((s) => s.suites.includes(suite));
  if (!archive) {
    throw new ImageStoreError(
      `no apt source for Debian "${suite}" in ${etcApt}/sources.list{,.d}; set CELLBLOCK_DEBIAN_MIRROR to a Debian mirror URI`,
    );
  }
  const sources = related.map((s) => ({ ...s, uri: fetchableUri(s.uri) }));
  return { mirror: fetchableUri(archive.uri), sources, aptConf, origin: `${etcApt} (host apt configuration)` };
}

/** One-line sources.list text for the chroot's apt. */
export function renderSourcesList(sources: AptSource[]): string {
  return sources
    .map((s) => s.suites.map((suite) => `deb ${s.uri} ${suite} ${(s.components.length ? s.components : ['main']).join(' ')}`).join('\n'))
    .join('\n')
    .concat('\n');
}

/** http(s)_proxy for debootstrap, which reads the environment rather than apt.conf. */
export function proxyEnv(setup: AptSetup, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of setup.aptConf) {
    const m = /^Acquire::(https?)::Proxy "([^"]+)";/i.exec(line);
    if (m && m[2] !== 'DIRECT' && !env[`${m[1]!.toLowerCase()}_proxy`]) out[`${m[1]!.toLowerCase()}_proxy`] = m[2]!;
  }
  return out;
}
