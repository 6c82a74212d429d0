// Where the Debian packages come from: the host machine's own apt configuration (deb822
// `/etc/apt/sources.list.d/*.sources` or one-line `/etc/apt/sources.list`), or the env var
// CELLBLOCK_DEBIAN_MIRROR. No mirror host is ever written into the repository: the machine that
// builds the images decides. A host of another Debian release (a trixie host building the
// bookworm images) lends its Debian archive and security sources, with the image's suites.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ImageStoreError } from './errors.js';

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  /** The host's Signed-By (deb822) or `[signed-by=...]` (one-line), when it has one. */
  signedBy?: string;
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
  /** What the build log should say about the choice: sources derived from another release's,
   * unfetchable entries skipped. */
  notes: string[];
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
    const signedBy = fields.get('signed-by');
    for (const uri of words('uris')) {
      sources.push({ uri, suites: words('suites'), components: words('components'), ...(signedBy ? { signedBy } : {}) });
    }
  }
  return sources;
}

/** Parses one-line `deb [options] uri suite components...` entries (a `cdrom:[label]/` URI,
 * whose label has spaces, included). */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^(\S+)\s+(?:\[([^\]]*)\]\s*)?(cdrom:\[[^\]]*\]\S*|\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m || m[1] !== 'deb') continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[2] ?? '')?.[1];
    sources.push({ uri: m[3]!, suites: [m[4]!], components: m[5]!.split(/\s+/).filter(Boolean), ...(signedBy ? { signedBy } : {}) });
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

/** A source's URI made fetchable, or why it cannot be (fetchableUri's error). */
function tryFetchable(uri: string): { uri: string } | { error: ImageStoreError } {
  try {
    return { uri: fetchableUri(uri) };
  } catch (err) {
    if (err instanceof ImageStoreError) return { error: err };
    throw err;
  }
}

/** The names Debian gives its releases: every codename since 2.0, and the aliases that move
 * with them. (`experimental` is left out: it is not a whole archive.) */
const DEBIAN_RELEASES = new Set([
  'hamm', 'slink', 'potato', 'woody', 'sarge', 'etch', 'lenny', 'squeeze', 'wheezy', 'jessie',
  'stretch', 'buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke',
  'oldoldstable', 'oldstable', 'stable', 'testing', 'unstable', 'sid',
]);

/**
 * What a suite is in Debian's naming: a release's main archive (`trixie`, `stable`: one word,
 * no suffix), its security archive (`trixie-security`, or `buster/updates` before bullseye), or
 * something else (`-updates`, `-backports`, `-proposed-updates`, `-debug`, a third party's own).
 */
function pocketOf(suite: string): { release: string; pocket: 'archive' | 'security' } | undefined {
  if (/^[a-z]+$/.test(suite) && suite !== 'experimental') return { release: suite, pocket: 'archive' };
  const security = /^([a-z]+)(?:-security|\/updates)$/.exec(suite)?.[1];
  return security ? { release: security, pocket: 'security' } : undefined;
}

/**
 * How sure we are that a host source serves Debian's own archive: 2 when the host checks it
 * with Debian's archive keyring (Signed-By names `debian-archive-*`, as Debian's container
 * images and Debian 13's deb822 sources have it); 1 when it has no Signed-By naming a keyring file, carries
 * `main`, its suite is one of Debian's release names and its URI's path ends in `/debian` or
 * `/debian-security` (Debian's mirror layout, which apt caches and proxies keep; an unfetchable
 * entry is judged without its path); 0 otherwise
 * (another keyring: a derivative's or a third party's archive, even one under a `/debian` path;
 * an Ubuntu release name; a component-less or path-less repository).
 */
function debianEvidence(source: AptSource, release: string, fetchUri: string | undefined): 0 | 1 | 2 {
  if (!source.components.includes('main')) return 0;
  const signedBy = source.signedBy && !/BEGIN PGP/.test(source.signedBy) ? source.signedBy.split(/[\s,]+/).filter(Boolean) : [];
  const keyrings = signedBy.filter((item) => item.includes('/'));
  if (keyrings.some((path) => basename(path).startsWith('debian-archive-'))) return 2;
  if (keyrings.length > 0) return 0;
  if (!DEBIAN_RELEASES.has(release)) return 0;
  // An entry debootstrap cannot fetch (`cdrom:[label]/`) has no mirror path to judge; it is never
  // lent, only named in the error when nothing fetchable is left.
  return fetchUri === undefined || /\/debian(-security)?\/*$/.test(fetchUri.replace(/[?#].*$/, '')) ? 1 : 0;
}

interface Candidate {
  source: AptSource;
  suite: string;
  fetched: { uri: string } | { error: ImageStoreError };
  evidence: 0 | 1 | 2;
}

/**
 * The host's Debian sources of one pocket (main archive or security) to lend to another
 * release: the fetchable ones with the best evidence (several when the host lists several
 * mirrors as sure), or, when every such source is unfetchable, the first one's error.
 */
function lend(sources: AptSource[], pocket: 'archive' | 'security'): { chosen: Candidate[]; skipped: Candidate[]; error?: ImageStoreError } {
  const candidates: Candidate[] = [];
  for (const source of sources) {
    for (const suite of source.suites) {
      const named = pocketOf(suite);
      if (named?.pocket !== pocket) continue;
      const fetched = tryFetchable(source.uri);
      const evidence = debianEvidence(source, named.release, 'uri' in fetched ? fetched.uri : undefined);
      if (evidence > 0) candidates.push({ source, suite, fetched, evidence });
    }
  }
  const fetchable = candidates.filter((c) => 'uri' in c.fetched);
  const best = Math.max(0, ...fetchable.map((c) => c.evidence));
  const seen = new Set<string>();
  const chosen = fetchable.filter((c) => {
    const uri = (c.fetched as { uri: string }).uri;
    if (c.evidence !== best || seen.has(uri)) return false;
    seen.add(uri);
    return true;
  });
  const first = candidates[0];
  const skipped = candidates.filter((c) => 'error' in c.fetched);
  return { chosen, skipped, error: chosen.length === 0 && first && 'error' in first.fetched ? first.fetched.error : undefined };
}

/**
 * The apt setup for building `suite` layers. CELLBLOCK_DEBIAN_MIRROR (a URI) overrides the
 * host's configuration. Otherwise the host's sources that name `suite` are used, with their
 * `-updates`/`-security` entries (a Debian host of the same release); when none does (a host of
 * another release: trixie, `stable`, `sid`), the host's Debian archive source lends its URI to
 * `suite` and `suite-updates`, and its Debian security source to `suite-security` (notes say
 * which). An entry debootstrap cannot fetch (`cdrom:`, `tor+http`) is skipped while a fetchable
 * one serves the same suite; only when none is left is its error thrown.
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
      notes: [],
    };
  }
  const origin = `${etcApt} (host apt configuration)`;
  const host = hostSources(etcApt);
  const related = host
    .map((s) => ({ ...s, suites: s.suites.filter((x) => x === suite || x.startsWith(`${suite}-`)) }))
    .filter((s) => s.suites.length > 0);
  const notes: string[] = [];

  if (related.some((s) => s.suites.includes(suite))) {
    const resolved = related.map((source) => ({ source, fetched: tryFetchable(source.uri) }));
    const served = new Set(resolved.flatMap((r) => ('uri' in r.fetched ? r.source.suites : [])));
    const sources: AptSource[] = [];
    for (const { source, fetched } of resolved) {
      if ('error' in fetched) {
        if (source.suites.some((x) => !served.has(x))) throw fetched.error;
        notes.push(`skipped apt source ${source.uri} (${source.suites.join(' ')}): debootstrap cannot fetch it, and another source serves ${source.suites.join(' ')}`);
        continue;
      }
      sources.push({ uri: fetched.uri, suites: source.suites, components: source.components });
    }
    const archive = sources.find((s) => s.suites.includes(suite))!;
    return { mirror: archive.uri, sources, aptConf, origin, notes };
  }

  const archive = lend(host, 'archive');
  if (archive.chosen.length === 0) {
    if (archive.error) throw archive.error;
    throw new ImageStoreError(
      `no apt source for Debian "${suite}" in ${etcApt}/sources.list{,.d}, nor a Debian archive source of another release to take its mirror from; set CELLBLOCK_DEBIAN_MIRROR to a Debian mirror URI`,
    );
  }
  const security = lend(host, 'security');
  if (security.chosen.length === 0 && security.error) throw security.error;
  const sources: AptSource[] = [
    ...archive.chosen.map((c) => ({ uri: (c.fetched as { uri: string }).uri, suites: [suite, `${suite}-updates`], components: c.source.components })),
    ...security.chosen.map((c) => ({ uri: (c.fetched as { uri: string }).uri, suites: [`${suite}-security`], components: c.source.components })),
  ];
  notes.push(
    `no host apt source names "${suite}": derived from the host's Debian sources: ` +
      [
        ...archive.chosen.map((c) => `${c.source.uri} ${c.suite} -> ${suite} ${suite}-updates`),
        ...security.chosen.map((c) => `${c.source.uri} ${c.suite} -> ${suite}-security`),
      ].join('; ') +
      (security.chosen.length ? '' : `; the host has no Debian security source, so none for ${suite}-security`),
  );
  for (const c of [...archive.skipped, ...security.skipped]) {
    notes.push(`skipped apt source ${c.source.uri} (${c.suite}): debootstrap cannot fetch it, and another source serves the same`);
  }
  return { mirror: sources[0]!.uri, sources, aptConf, origin: `${origin}, derived from another release's sources`, notes };
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
