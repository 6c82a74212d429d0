// Image definitions, layer hashes and the apt setup: the pure parts of the image builder.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseDeb822Sources, parseOneLineSources, renderSourcesList, resolveAptSetup } from '../../src/images/apt-config.js';
import { planImage } from '../../src/images/builder.js';
import { ImageDefinitions } from '../../src/images/definitions.js';
import { ImageDefinitionError, ImageStoreError, UnknownImageError } from '../../src/images/errors.js';
import { canonicalJson } from '../../src/digest.js';
import { defaultDefinitionsDir } from '../../src/images/paths.js';
import { openImageStore } from '../../src/images/store.js';
import { definitionsDir, scratchDir } from './helpers.js';

const scratch = scratchDir('defs');
after(() => scratch.remove());
let n = 0;
/** A fresh definitions dir with only `defs`. */
const defsWith = (defs: Record<string, unknown>): string => definitionsDir(join(scratch.dir, String(n++)), defs);
const emptyStore = openImageStore(join(scratch.dir, 'data'));

function rejects(defs: Record<string, unknown>, problem: RegExp, file?: string): void {
  assert.throws(
    () => ImageDefinitions.load(defsWith(defs)),
    (err: unknown) => err instanceof ImageDefinitionError && problem.test(err.problem) && (!file || err.file.endsWith(file)),
  );
}

const bb = { name: 'bb', from: null, build: { kind: 'busybox' } };

describe('the repository definitions', () => {
  const defs = ImageDefinitions.load(defaultDefinitionsDir());

  it('define the base, the test image and the language images', () => {
    for (const name of ['base', 'busybox', 'python', 'node', 'gcc', 'java']) assert.ok(defs.has(name), name);
    assert.deepEqual(defs.chain('python').map((d) => d.name), ['base', 'python']);
    assert.equal(defs.debianSuite('java'), 'bookworm');
    assert.equal(defs.debianSuite('busybox'), undefined);
  });

  it('give python and gcc one shared base layer hash and different top layers', () => {
    const python = planImage('python', defs, emptyStore, defaultDefinitionsDir());
    const gcc = planImage('gcc', defs, emptyStore, defaultDefinitionsDir());
    assert.equal(python[0]!.hash, gcc[0]!.hash);
    assert.notEqual(python[1]!.hash, gcc[1]!.hash);
    assert.match(python[1]!.hash, /^[0-9a-f]{64}$/);
  });

  it('name an unknown image with the known ones', () => {
    assert.throws(() => defs.get('cobol'), (err: unknown) => err instanceof UnknownImageError && /python/.test(err.message));
  });
});

describe('bad definitions are typed errors naming file and field', () => {
  it('invalid JSON', () => rejects({ bb: '{ "name": ' }, /not valid JSON/, 'bb.json'));
  it('unknown field', () => rejects({ bb: { ...bb, packages: ['x'] } }, /unknown field "packages"/));
  it('file not named after the image', () => rejects({ other: bb }, /must be named bb\.json/));
  it('bad name', () => rejects({ 'Bad Name': { ...bb, name: 'Bad Name' } }, /name "Bad Name" does not match/));
  it('unknown build kind', () => rejects({ bb: { ...bb, build: { kind: 'docker' } } }, /build\.kind "docker"/));
  it('parent that has no definition', () =>
    rejects({ bb, c: { name: 'c', from: 'nope', build: { kind: 'chroot', commands: ['true'] } } }, /"nope", which has no definition/));
  it('a loop of parents', () =>
    rejects(
      {
        a: { name: 'a', from: 'b', build: { kind: 'chroot', commands: ['true'] } },
        b: { name: 'b', from: 'a', build: { kind: 'chroot', commands: ['true'] } },
      },
      /chain loops/,
    ));
  it('a base kind with a parent', () => rejects({ bb, b2: { name: 'b2', from: 'bb', build: { kind: 'busybox' } } }, /"from" must be null/));
  it('a chroot layer without a parent', () => rejects({ c: { name: 'c', from: null, build: { kind: 'chroot', commands: ['true'] } } }, /"from" must name an image/));
  it('a chroot layer that changes nothing', () => rejects({ bb, c: { name: 'c', from: 'bb', build: { kind: 'chroot' } } }, /needs "packages" or "commands"/));
  it('packages over a non-Debian base', () =>
    rejects({ bb, c: { name: 'c', from: 'bb', build: { kind: 'chroot', packages: ['python3'] } } }, /need a Debian base/));
  it('a malformed package name', () =>
    rejects({ d: { name: 'd', from: null, build: { kind: 'debootstrap', suite: 'bookworm', include: ['Python 3'] } } }, /build\.include\[0\]/));
  it('a bad debootstrap variant', () =>
    rejects({ d: { name: 'd', from: null, build: { kind: 'debootstrap', suite: 'bookworm', variant: 'fat' } } }, /variant/));
});

describe('layer hashes', () => {
  it('canonical JSON does not depend on key order', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ y: 2, x: 1 }] }), canonicalJson({ a: [{ x: 1, y: 2 }], b: 1 }));
    assert.notEqual(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
  });

  it('do not depend on the image name; do depend on the step and the parent', () => {
    const dir = defsWith({
      bb,
      one: { name: 'one', from: 'bb', build: { kind: 'chroot', commands: ['echo 1 > /x'] } },
      same: { name: 'same', from: 'bb', build: { kind: 'chroot', commands: ['echo 1 > /x'] } },
      other: { name: 'other', from: 'bb', build: { kind: 'chroot', commands: ['echo 2 > /x'] } },
      stacked: { name: 'stacked', from: 'one', build: { kind: 'chroot', commands: ['echo 1 > /x'] } },
    });
    const defs = ImageDefinitions.load(dir);
    const top = (name: string): string => planImage(name, defs, emptyStore, dir).at(-1)!.hash;
    assert.equal(top('one'), top('same'));
    assert.notEqual(top('one'), top('other'));
    assert.notEqual(top('one'), top('stacked'));
  });
});

describe('apt setup from the host configuration', () => {
  it('parses deb822 sources, skipping deb-src and disabled stanzas', () => {
    const text = [
      'Types: deb', 'URIs: http://mirror.example/debian', 'Suites: bookworm bookworm-updates', 'Components: main contrib', '',
      'Types: deb-src', 'URIs: http://mirror.example/debian', 'Suites: bookworm', 'Components: main', '',
      'Types: deb', 'URIs: http://off.example/debian', 'Suites: bookworm', 'Components: main', 'Enabled: no',
    ].join('\n');
    assert.deepEqual(parseDeb822Sources(text), [
      { uri: 'http://mirror.example/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main', 'contrib'] },
    ]);
  });

  it('parses one-line sources with options and comments', () => {
    assert.deepEqual(parseOneLineSources('# x\ndeb [arch=amd64] http://m.example/debian bookworm main # c\ndeb-src http://m.example/debian bookworm main\n'), [
      { uri: 'http://m.example/debian', suites: ['bookworm'], components: ['main'] },
    ]);
  });

  it('takes the archive and its -security/-updates suites from a host config, and nothing else', () => {
    const etc = join(scratch.dir, 'etc-apt');
    mkdirSync(join(etc, 'sources.list.d'), { recursive: true });
    writeFileSync(join(etc, 'sources.list.d', 'debian.sources'), 'Types: deb\nURIs: http://a.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://a.example/debian-security\nSuites: bookworm-security\nComponents: main\n');
    writeFileSync(join(etc, 'sources.list.d', 'other.list'), 'deb http://b.example/ubuntu jammy main\n');
    const setup = resolveAptSetup('bookworm', {}, etc);
    assert.equal(setup.mirror, 'http://a.example/debian');
    assert.equal(renderSourcesList(setup.sources), 'deb http://a.example/debian bookworm main\ndeb http://a.example/debian bookworm-updates main\ndeb http://a.example/debian-security bookworm-security main\n');
  });

  it("reads a mirror+file source's list (Debian's cloud images), and refuses what debootstrap cannot fetch", () => {
    const etc = join(scratch.dir, 'etc-apt-cloud');
    mkdirSync(join(etc, 'sources.list.d'), { recursive: true });
    const list = join(etc, 'debian.list');
    const securityList = join(etc, 'debian-security.list');
    writeFileSync(list, '# mirrors\nhttps://m.example/debian\tpriority:1\nhttp://n.example/debian\n');
    writeFileSync(securityList, 'https://m.example/debian-security\n');
    writeFileSync(
      join(etc, 'sources.list.d', 'debian.sources'),
      `Types: deb\nURIs: mirror+file://${list}\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: mirror+file://${securityList}\nSuites: bookworm-security\nComponents: main\n`,
    );
    const setup = resolveAptSetup('bookworm', {}, etc);
    assert.equal(setup.mirror, 'https://m.example/debian');
    assert.equal(renderSourcesList(setup.sources), 'deb https://m.example/debian bookworm main\ndeb https://m.example/debian bookworm-updates main\ndeb https://m.example/debian-security bookworm-security main\n');
    for (const [uri, problem] of [[`mirror+file://${join(etc, 'missing.list')}`, /cannot read its mirror list \(ENOENT\)/], ['tor+http://m.example/debian', /only http\(s\):\/\/ and file:\/\//]] as const) {
      writeFileSync(join(etc, 'sources.list.d', 'debian.sources'), `Types: deb\nURIs: ${uri}\nSuites: bookworm\nComponents: main\n`);
      assert.throws(() => resolveAptSetup('bookworm', {}, etc), (err: unknown) => err instanceof ImageStoreError && problem.test(err.message) && /CELLBLOCK_DEBIAN_MIRROR/.test(err.message));
    }
  });

  it('reads signed-by and cdrom: labels from one-line sources', () => {
    assert.deepEqual(
      parseOneLineSources('deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/ bookworm contrib main\ndeb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://m.example/debian trixie main\n'),
      [
        { uri: 'cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/', suites: ['bookworm'], components: ['contrib', 'main'] },
        { uri: 'http://m.example/debian', suites: ['trixie'], components: ['main'], signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg' },
      ],
    );
  });

  /** A fresh /etc/apt with these files (paths relative to it). */
  const etcAptWith = (name: string, files: Record<string, string>): string => {
    const etc = join(scratch.dir, name);
    mkdirSync(join(etc, 'sources.list.d'), { recursive: true });
    for (const [path, text] of Object.entries(files)) writeFileSync(join(etc, path), text);
    return etc;
  };

  it("lends a Debian 13 host's archive and security sources (deb822, Signed-By) to the image's suite, and says so", () => {
    const keyring = 'Signed-By: /usr/share/keyrings/debian-archive-keyring.pgp\n';
    const etc = etcAptWith('etc-apt-trixie', {
      'sources.list.d/debian.sources':
        `Types: deb\nURIs: http://a.example/debian\nSuites: trixie trixie-updates\nComponents: main non-free-firmware\n${keyring}\n` +
        `Types: deb\nURIs: http://a.example/debian-security\nSuites: trixie-security\nComponents: main non-free-firmware\n${keyring}`,
      // A third party's archive under a /debian path, checked with its own key: not Debian's.
      'sources.list.d/vendor.sources': 'Types: deb\nURIs: https://v.example/debian\nSuites: trixie\nComponents: main\nSigned-By: /etc/apt/keyrings/vendor.asc\n',
      'sources.list.d/other.list': 'deb http://b.example/ubuntu noble main\n',
    });
    const setup = resolveAptSetup('bookworm', {}, etc);
    assert.equal(setup.mirror, 'http://a.example/debian');
    assert.equal(
      renderSourcesList(setup.sources),
      'deb http://a.example/debian bookworm main non-free-firmware\ndeb http://a.example/debian bookworm-updates main non-free-firmware\ndeb http://a.example/debian-security bookworm-security main non-free-firmware\n',
    );
    assert.match(setup.origin, /derived/);
    assert.equal(setup.notes.length, 1);
    assert.match(setup.notes[0]!, /no host apt source names "bookworm"/);
    assert.match(setup.notes[0]!, /http:\/\/a\.example\/debian trixie -> bookworm bookworm-updates; http:\/\/a\.example\/debian-security trixie-security -> bookworm-security$/);
  });

  it('lends a one-line `stable` host, and an old `<codename>/updates` security line', () => {
    const stable = resolveAptSetup('bookworm', {}, etcAptWith('etc-apt-stable', {
      'sources.list':
        '# the installer\'s\ndeb http://b.example/debian/ stable main contrib\ndeb-src http://b.example/debian/ stable main contrib\n' +
        'deb http://b.example/debian/ stable-updates main contrib\ndeb http://b.example/debian-security stable-security main contrib\n',
    }));
    assert.equal(stable.mirror, 'http://b.example/debian/');
    assert.equal(
      renderSourcesList(stable.sources),
      'deb http://b.example/debian/ bookworm main contrib\ndeb http://b.example/debian/ bookworm-updates main contrib\ndeb http://b.example/debian-security bookworm-security main contrib\n',
    );
    assert.match(stable.notes[0]!, /http:\/\/b\.example\/debian\/ stable -> bookworm bookworm-updates/);

    const buster = resolveAptSetup('bookworm', {}, etcAptWith('etc-apt-buster', {
      'sources.list': 'deb http://c.example/debian buster main\ndeb http://c.example/debian-security buster/updates main\n',
    }));
    assert.equal(renderSourcesList(buster.sources), 'deb http://c.example/debian bookworm main\ndeb http://c.example/debian bookworm-updates main\ndeb http://c.example/debian-security bookworm-security main\n');

    // sid with no security source: the archive is lent, and the note says there is no security source.
    const sid = resolveAptSetup('bookworm', {}, etcAptWith('etc-apt-sid', { 'sources.list': 'deb http://d.example/debian sid main\n' }));
    assert.equal(renderSourcesList(sid.sources), 'deb http://d.example/debian bookworm main\ndeb http://d.example/debian bookworm-updates main\n');
    assert.match(sid.notes[0]!, /no Debian security source/);
  });

  it('skips a cdrom: entry when an http source serves the same suite, and fails only when none is left', () => {
    const cdrom = 'deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1 20240210-11:28]/ bookworm contrib main\n';
    const setup = resolveAptSetup('bookworm', {}, etcAptWith('etc-apt-cdrom', {
      'sources.list': `${cdrom}deb http://a.example/debian/ bookworm main\ndeb http://a.example/debian-security bookworm-security main\n`,
    }));
    assert.equal(setup.mirror, 'http://a.example/debian/');
    assert.equal(renderSourcesList(setup.sources), 'deb http://a.example/debian/ bookworm main\ndeb http://a.example/debian-security bookworm-security main\n');
    assert.equal(setup.notes.length, 1);
    assert.match(setup.notes[0]!, /^skipped apt source cdrom:/);

    // The same on a host of another release: the fetchable archive source is the one lent.
    const trixie = resolveAptSetup('bookworm', {}, etcAptWith('etc-apt-cdrom-trixie', {
      'sources.list': 'deb cdrom:[Debian GNU/Linux 13.0.0 _Trixie_ - Official amd64 DVD Binary-1]/ trixie main\ndeb http://a.example/debian/ trixie main\n',
    }));
    assert.equal(trixie.mirror, 'http://a.example/debian/');
    assert.equal(renderSourcesList(trixie.sources), 'deb http://a.example/debian/ bookworm main\ndeb http://a.example/debian/ bookworm-updates main\n');
    assert.match(trixie.notes[1]!, /^skipped apt source cdrom:.* \(trixie\)/);

    // Nothing fetchable left for the suite: the clear message, as before.
    for (const [name, list] of [['etc-apt-cdrom-only', `${cdrom}deb http://a.example/debian-security bookworm-security main\n`], ['etc-apt-cdrom-only-trixie', 'deb cdrom:[Debian 13]/ trixie main\n']] as const) {
      const etc = etcAptWith(name, { 'sources.list': list });
      assert.throws(() => resolveAptSetup('bookworm', {}, etc), (err: unknown) => err instanceof ImageStoreError && /"cdrom:\[.*only http\(s\):\/\/ and file:\/\//.test(err.message) && /CELLBLOCK_DEBIAN_MIRROR/.test(err.message));
    }
  });

  it("does not take a third party's or a derivative's archive for Debian's", () => {
    for (const [name, text] of [
      // Its own keyring, though it serves a Debian codename under /debian.
      ['etc-apt-vendor-key', 'deb [signed-by=/etc/apt/keyrings/vendor.gpg] https://v.example/debian trixie main\n'],
      // No `main` component (a vendor's `stable` channel).
      ['etc-apt-vendor-channel', 'deb https://v.example/linux/debian trixie stable\n'],
      // Not a Debian release name, nor Debian's mirror path.
      ['etc-apt-other', 'deb http://v.example/repo trixie main\ndeb http://b.example/ubuntu noble main\n'],
    ] as const) {
      const etc = etcAptWith(name, { 'sources.list': text });
      assert.throws(() => resolveAptSetup('bookworm', {}, etc), (err: unknown) => err instanceof ImageStoreError && /no apt source for Debian "bookworm".*nor a Debian archive source/.test(err.message) && /CELLBLOCK_DEBIAN_MIRROR/.test(err.message));
    }
  });

  it('prefers CELLBLOCK_DEBIAN_MIRROR, and says what to do when the host has no Debian source', () => {
    const etc = join(scratch.dir, 'etc-apt-ubuntu');
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, 'sources.list'), 'deb http://b.example/ubuntu jammy main\n');
    assert.throws(() => resolveAptSetup('bookworm', {}, etc), (err: unknown) => err instanceof ImageStoreError && /CELLBLOCK_DEBIAN_MIRROR/.test(err.message));
    const setup = resolveAptSetup('bookworm', { CELLBLOCK_DEBIAN_MIRROR: 'http://c.example/debian' }, etc);
    assert.equal(setup.mirror, 'http://c.example/debian');
    assert.deepEqual(setup.sources[0]!.suites, ['bookworm', 'bookworm-updates']);
    assert.throws(() => resolveAptSetup('bookworm', { CELLBLOCK_DEBIAN_MIRROR: 'mirror without scheme' }, etc), ImageStoreError);
  });
});
