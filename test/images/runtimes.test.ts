// Runtime definitions as data: the repository's files load and keep their promises, lookups by
// id/alias/version work, and bad files are typed errors that name the file and the field.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RuntimeDefinitionError, UnknownRuntimeError } from '../../src/images/errors.js';
import { defaultRuntimesDir } from '../../src/images/paths.js';
import { namesLimit } from '../../src/images/placeholders.js';
import { loadRuntimes, RuntimeRegistry, compareVersions, isVersionSelector, versionInRange, versionMatches } from '../../src/images/runtimes.js';
import type { Runtime } from '../../src/images/types.js';
import { variantOf, variantsOf, withVariants } from '../../src/images/variants.js';
import { MAX_TIME_LIMIT_MS } from '../../src/units.js';
import { scratchDir } from './helpers.js';

const scratch = scratchDir('runtimes');
after(() => scratch.remove());

const python = JSON.parse(readFileSync(join(defaultRuntimesDir(), 'python.json'), 'utf8')) as Runtime;
let n = 0;
/** A runtimes dir with the given files (id → JSON object), loaded against the repo's images. */
function load(files: Record<string, unknown>): Runtime[] {
  const dir = join(scratch.dir, String(n++));
  mkdirSync(dir);
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, `${name}.json`), typeof value === 'string' ? value : JSON.stringify(value));
  return loadRuntimes(dir);
}
function rejects(files: Record<string, unknown>, problem: RegExp): void {
  assert.throws(() => load(files), (err: unknown) => err instanceof RuntimeDefinitionError && problem.test(err.problem));
}

describe('the repository runtimes', () => {
  const runtimes = loadRuntimes();
  const byId = new Map(runtimes.map((r) => [r.id, r]));

  it('cover Python 3, JavaScript, C, C++, Java 17, Ruby, Go, Rust, C#, Pascal, Haskell, PHP, Perl, Lua, R and Bash', () => {
    for (const id of ['python', 'javascript', 'c', 'cpp', 'java', 'ruby', 'go', 'rust', 'csharp', 'pascal', 'haskell', 'php', 'perl', 'lua', 'r', 'bash']) assert.ok(byId.has(id), id);
    assert.match(byId.get('python')!.version, /^3\./);
    assert.match(byId.get('java')!.version, /^17\./);
  });

  it('give each compiler only its sources: C, C++ and Java name their suffixes', () => {
    const suffixes = (id: string) => loadRuntimes().find((runtime) => runtime.id === id)?.compile?.sourceSuffixes;
    assert.deepEqual(suffixes('c'), ['.c']);
    assert.ok(suffixes('cpp')?.includes('.cpp') && suffixes('cpp')?.includes('.cc'));
    assert.deepEqual(suffixes('java'), ['.java']);
    assert.deepEqual(suffixes('go'), ['.go']);
    assert.deepEqual(suffixes('rust'), ['.rs']);
    assert.deepEqual(suffixes('csharp'), ['.cs']);
    assert.deepEqual(suffixes('pascal'), ['.pas', '.pp', '.lpr']);
    assert.deepEqual(suffixes('haskell'), ['.hs']);
  });

  it('compile exactly the compiled languages, with {files} in the compile argv ({entry} for rustc and fpc)', () => {
    for (const r of runtimes) {
      assert.equal(r.compile !== undefined, ['c', 'cpp', 'java', 'go', 'rust', 'csharp', 'pascal', 'haskell'].includes(r.id), r.id);
      if (r.compile) assert.ok(r.compile.argv.includes(['rust', 'pascal'].includes(r.id) ? '{entry}' : '{files}'), r.id);
      // Compile arguments (/v1 compileArgs, Judge0 compiler_options) are taken by every compiled runtime.
      if (r.compile) assert.ok(r.compile.argv.includes('{args}'), r.id);
    }
  });

  it('run an interpreted submission by {entry} (its first file), never by a fixed file name', () => {
    for (const r of runtimes.filter((x) => !x.compile)) {
      assert.ok(r.run.argv.includes('{entry}'), r.id);
      assert.ok(!r.run.argv.includes(r.sourceFile), `${r.id} runs ${r.sourceFile} whatever the first file is`);
    }
  });

  it('give Java more memory and tasks than the others, and Java and R more open files', () => {
    const java = byId.get('java')!;
    for (const r of runtimes.filter((x) => x.id !== 'java')) {
      assert.ok(java.defaultLimits.memoryBytes > r.defaultLimits.memoryBytes, r.id);
      assert.ok(java.defaultLimits.pids > r.defaultLimits.pids, r.id);
      assert.ok(java.maxLimits.memoryBytes >= r.maxLimits.memoryBytes, r.id);
    }
    // R does not start below 167 (its library limit, at least 100, must be at most 60% of it).
    for (const r of runtimes) assert.equal(r.defaultLimits.openFiles >= 167, ['java', 'r'].includes(r.id), r.id);
    assert.deepEqual(runtimes.find((r) => r.id === 'r')?.minLimits, { openFiles: 167 });
  });

  it('give the stages of python, C and C++ the paths their start-up looks up', () => {
    const has = (paths: string[] | undefined, path: string, what: string) => assert.ok(paths?.includes(path), what);
    has(byId.get('python')!.run.startupPaths, '/usr/lib/python3.11/encodings/__init__.py', "python's first module read from a file");
    has(byId.get('c')!.compile?.startupPaths, '/usr/include/stdio.h', "C's hello world header");
    has(byId.get('cpp')!.compile?.startupPaths, '/usr/include/c++/12/iostream', "C++'s hello world header");
    for (const id of ['c', 'cpp']) has(byId.get(id)!.run.startupPaths, '/lib/x86_64-linux-gnu/libc.so.6', `${id}'s program loads libc`);
  });

  it("give Java Piston's launcher as its `piston` variant: no compile, the run's JVM flags, the source launcher on the entry file", () => {
    const java = byId.get('java')!;
    assert.deepEqual(Object.keys(java.variants ?? {}), ['piston']);
    const piston = variantOf(java, 'piston')!;
    assert.equal(piston.compile, undefined, 'Piston runs Java without a compile stage');
    const flags = java.run.argv.slice(1, java.run.argv.indexOf('-cp'));
    // javac's class-data archive, as the compile stage gives it to javac's JVM (-J).
    const archive = java.compile!.argv.find((arg) => arg.startsWith('-J-XX:SharedArchiveFile='))!.slice('-J'.length);
    // The source level is the image's JDK's, as Piston's `java file.java` compiles at its JDK's
    // own level: a runtime moved to another JDK without its variant fails here.
    const major = java.version.split('.')[0]!;
    assert.deepEqual(piston.run.argv, ['/usr/bin/java', ...flags, archive, '--source', major, '{entry}', '{args}']);
    // The JVM's own warnings (a thread it cannot start at the pids limit) go to stderr, not into
    // the stdout a judge compares, in both ways of running.
    assert.deepEqual(flags.slice(-2), ['-Xlog:disable', '-Xlog:all=warning:stderr']);
    assert.ok(piston.run.startupPaths?.includes('/usr/lib/jvm/java-17-openjdk-amd64/lib/ct.sym'), 'traced: the in-memory compile reads the platform\'s class signatures');
    // Everything but the stages is the runtime's.
    for (const field of ['id', 'image', 'env', 'defaultLimits', 'maxLimits', 'sourceFile'] as const) assert.equal(piston[field], java[field], field);
    // No other runtime has a variant: their Piston packages run as their runtime does.
    assert.deepEqual(runtimes.filter((r) => r.variants).map((r) => r.id), ['java']);
  });

  it("tell the runtimes whose heap would be sized from the machine's RAM each stage's memory limit", () => {
    const java = byId.get('java')!;
    // The JVM's heap (javac's too; the source launcher's, which compiles in the run's JVM).
    assert.ok(java.compile!.argv.includes('-J-Xmx{memoryMiB:75%}m'));
    for (const stage of [java.run, variantOf(java, 'piston')!.run]) assert.ok(stage.argv.includes('-Xmx{memoryMiB:75%}m'));
    assert.deepEqual(byId.get('javascript')!.run.argv.slice(1, 3), ['--max-old-space-size={memoryMiB:75%}', '--max-semi-space-size={memoryMiB:3%}']);
    const go = byId.get('go')!.env;
    assert.deepEqual([go.GOMEMLIMIT, go.GOMAXPROCS], ['{memoryBytes:90%}', '{cpuCores}']);
    const ruby = byId.get('ruby')!.env;
    assert.deepEqual([ruby.RUBY_GC_MALLOC_LIMIT_MAX, ruby.RUBY_GC_OLDMALLOC_LIMIT_MAX], ['{memoryBytes:12%}', '{memoryBytes:25%}']);
  });

  it('tell the runtimes whose stack is their own the stack limit, and the JVM its heap shape and CPUs', () => {
    const java = byId.get('java')!;
    // The launcher's main thread, not the process's stack; the old generation big enough for one
    // array of most of the heap; the job's CPUs, not the host's (the run's and the launcher's).
    for (const stage of [java.run, variantOf(java, 'piston')!.run]) {
      for (const flag of ['-Xss{stackKiB}k', '-XX:NewRatio=5', '-XX:ActiveProcessorCount={cpuCores}']) assert.ok(stage.argv.includes(flag), flag);
    }
    // The JVM refuses a thread stack below 136 KiB.
    assert.deepEqual(java.minLimits, { stackBytes: 136 * 1024 });
    // V8's limit says how big the stack is: below it, with room for the C++ frames beneath.
    assert.ok(byId.get('javascript')!.run.argv.includes('--stack-size={stackKiB:75%}'));
    assert.equal(byId.get('ruby')!.env.RUBY_THREAD_VM_STACK_SIZE, '{stackBytes:50%}');
  });

  it('have a hello world that prints something and absolute program paths', () => {
    for (const r of runtimes) {
      assert.ok(r.helloWorld.stdout.length > 0, r.id);
      assert.ok(r.run.argv[0]!.startsWith('/') || r.run.argv[0]!.startsWith('./'), r.id);
    }
  });
});

describe('lookup', () => {
  const registry = new RuntimeRegistry(loadRuntimes());

  it('by id and by alias, case-insensitively', () => {
    assert.equal(registry.find('python')?.id, 'python');
    assert.equal(registry.find('py3')?.id, 'python');
    assert.equal(registry.find('C++')?.id, 'cpp');
    assert.equal(registry.find('nodejs')?.id, 'javascript');
    assert.equal(registry.find('cobol'), undefined);
  });

  it('by version selector', () => {
    const v = registry.find('python')!.version;
    assert.equal(registry.find('python', v)?.id, 'python');
    assert.equal(registry.find('python', v.split('.')[0])?.id, 'python');
    assert.equal(registry.find('python', '*')?.id, 'python');
    assert.equal(registry.find('python', '2'), undefined);
    assert.throws(() => registry.resolve('python', '2.7'), (err: unknown) => err instanceof UnknownRuntimeError && /2\.7/.test(err.message));
  });

  it('picks the newest of several versions', () => {
    const older = { ...python, id: 'python-old', version: '3.9.2' };
    const newer = { ...python, id: 'python-new', version: '3.12.1' };
    const reg = new RuntimeRegistry([older, newer, python]);
    assert.equal(reg.find('python3')?.id, 'python-new');
    assert.equal(reg.find('python3', '3.9')?.id, 'python-old');
    assert.equal(reg.find('python3', '3.x')?.id, 'python-new');
  });

  it('compares versions numerically', () => {
    assert.ok(compareVersions('3.10.0', '3.9.7') > 0);
    assert.ok(versionMatches('17.0.15', '17'));
    assert.ok(!versionMatches('17.0.15', '1'));
  });

  it("matches a version by the release line it names or a release in it, one rule for /v1's selectors and Piston's ranges", () => {
    const matching = (version: string, selectors: string[]) => selectors.filter((selector) => versionMatches(version, selector));
    // Two parts: a release line ("18.20" is whichever 18.20.x the image has), so its patch releases match.
    assert.deepEqual(matching('18.20', ['18', '18.20', '18.20.4', '18.20.0', '18.x', '18.20.x', 'x', '*', 'latest']), ['18', '18.20', '18.20.4', '18.20.0', '18.x', '18.20.x', 'x', '*', 'latest']);
    // Parts are numbers, not text: "18.2" is not a prefix of 18.20's line; nor is another line or major.
    assert.deepEqual(matching('18.20', ['18.2', '18.2.0', '18.21', '18.21.0', '18.200', '1', '19', '18.20.4.1', '^18.1', '18.20.4-rc.1']), []);
    // One part: a major release line, any of its releases.
    assert.deepEqual(matching('21', ['21', '21.0', '21.0.3', '21.4.1', '2', '22', '210']), ['21', '21.0', '21.0.3', '21.4.1']);
    // Three parts: one release, named whole or by a line it is in.
    assert.deepEqual(matching('3.11.2', ['3', '3.11', '3.11.2', '3.x', '3.11.3', '3.1', '3.11.2.0', '3.11.20']), ['3', '3.11', '3.11.2', '3.x']);
    // A version of another shape matches its own spelling, and the lines of the release it begins with.
    assert.deepEqual(matching('9.4.7.1', ['9.4.7.1', '9.4', '9.4.7', '9.4.8']), ['9.4.7.1', '9.4', '9.4.7']);
    // Piston's SemVer ranges, by the same rule.
    for (const range of ['18.20.4', '~18.20.3', '^18.1', '>=18.20.5 <18.21', '18.x', '18']) assert.ok(versionInRange('18.20', range), range);
    for (const range of ['18.2', '18.21.0', '>=18.21', '<18.20.0', '19', 'eighteen']) assert.ok(!versionInRange('18.20', range), range);
    assert.ok(versionInRange('3.11.2', '<3.12') && !versionInRange('3.11.2', '3.11.3'));
  });

  it("takes a /v1 selector in the shapes SemVer reads only: numbers first, wildcards last, at most three parts, no leading zero", () => {
    for (const selector of ['3', '3.11', '3.11.2', '3.x', '3.11.x', '3.x.x', '3.*', 'x', 'x.x', 'x.x.x', 'X', '*']) {
      assert.ok(isVersionSelector(selector), selector);
      assert.ok(versionMatches('3.11.2', selector), selector);
    }
    // A wildcard before a number, a fourth part, a leading zero ("03" is not 3), a number SemVer
    // cannot hold: no selector, so a version named exactly (which no runtime has).
    for (const selector of ['x.11', '*.20', 'x.11.2', '3.x.2', '3.11.2.x', 'x.x.x.x', '03', '3.011', '3.11.02', '9999999999999999', '3.', '.3', '3..1']) {
      assert.ok(!isVersionSelector(selector), selector);
      assert.ok(!versionMatches('3.11.2', selector), selector);
      assert.ok(versionMatches(selector, selector), selector);
    }
  });

  it('finds a release line by any of its patch releases, and not by a shorter number that is a text prefix', () => {
    const ours = new RuntimeRegistry(loadRuntimes());
    const javascript = ours.find('javascript')!;
    assert.equal(javascript.version, '18.20', 'images/runtimes/javascript.json names the 18.20 line');
    for (const version of ['18', '18.20', '18.20.4', '18.20.0']) assert.equal(ours.find('js', version)?.id, 'javascript', version);
    for (const version of ['18.2', '18.21.0', '18.20.4.1']) assert.equal(ours.find('js', version), undefined, version);
  });
});

describe('bad runtime files are typed errors naming the field', () => {
  const limits = python.defaultLimits;
  it('invalid JSON', () => rejects({ python: '{' }, /not valid JSON/));
  it('file not named after the id', () => rejects({ other: python }, /must be named python\.json/));
  it('incomplete limits', () => {
    const { cpuTimeMs: _omit, ...partial } = limits;
    rejects({ python: { ...python, defaultLimits: partial } }, /defaultLimits\.cpuTimeMs is missing/);
  });
  it('a non-integer or non-positive limit', () => {
    rejects({ python: { ...python, maxLimits: { ...python.maxLimits, pids: 1.5 } } }, /maxLimits\.pids must be a whole number/);
    rejects({ python: { ...python, maxLimits: { ...python.maxLimits, memoryBytes: -1 } } }, /maxLimits\.memoryBytes must be a number > 0/);
  });
  it("a time maximum above the engine's 2^31 - 1 ms: refused at load, not by every worker at a job's run", () => {
    for (const name of ['cpuTimeMs', 'wallTimeMs'] as const) {
      const maxLimits = { ...python.maxLimits, [name]: MAX_TIME_LIMIT_MS };
      assert.equal(load({ python: { ...python, maxLimits } })[0]!.maxLimits[name], MAX_TIME_LIMIT_MS);
      rejects({ python: { ...python, maxLimits: { ...maxLimits, [name]: MAX_TIME_LIMIT_MS + 1 } } }, new RegExp(`maxLimits\\.${name} \\(2147483648\\) exceeds the engine's most, 2147483647 \\(2\\^31 - 1 ms, 24\\.8 days\\)`));
    }
  });
  it('a default above the maximum', () =>
    rejects({ python: { ...python, defaultLimits: { ...limits, memoryBytes: python.maxLimits.memoryBytes * 2 } } }, /defaultLimits\.memoryBytes .* exceeds maxLimits/));
  it('a minimum above the default, or of no limit', () => {
    rejects({ python: { ...python, minLimits: { openFiles: limits.openFiles + 1 } } }, /minLimits\.openFiles \(\d+\) exceeds defaultLimits\.openFiles/);
    rejects({ python: { ...python, minLimits: { files: 3 } } }, /unknown field "files"/);
  });
  it('a compile step with neither {files} nor {entry}, or with both', () => {
    rejects({ python: { ...python, compile: { argv: ['/usr/bin/true'] } } }, /must contain "\{files\}" .* or "\{entry\}"/);
    // Both would hand the compiler its entry file twice.
    rejects({ python: { ...python, compile: { argv: ['/usr/bin/cc', '{entry}', '{files}'] } } }, /not both/);
    assert.deepEqual(load({ python: { ...python, compile: { argv: ['/usr/bin/rustc', '{entry}'] } } })[0]!.compile!.argv, ['/usr/bin/rustc', '{entry}']);
  });
  it('source suffixes that are empty or not a dot and a name', () => {
    for (const sourceSuffixes of [[], ['c'], ['.'], ['.c d'], ['.c/x'], [1]]) {
      rejects({ python: { ...python, compile: { argv: ['/usr/bin/cc', '{files}'], sourceSuffixes } } }, /compile\.sourceSuffixes/);
    }
    assert.deepEqual(load({ python: { ...python, compile: { argv: ['/usr/bin/cc', '{files}'], sourceSuffixes: ['.c', '.c++'] } } })[0]!.compile!.sourceSuffixes, ['.c', '.c++']);
  });
  it('a source file outside the work dir', () => rejects({ python: { ...python, sourceFile: '../main.py' } }, /sourceFile/));
  it('an image without a definition', () => rejects({ python: { ...python, image: 'cobol' } }, /image "cobol" has no definition/));
  it('an unknown field', () => rejects({ python: { ...python, timeout: 3 } }, /unknown field "timeout"/));
  it('start-up paths that are not absolute, normalised paths inside the image', () => {
    for (const bad of ['usr/lib', '/usr/../etc', '/usr//lib', '/usr/lib/', '/usr/./lib', 7]) {
      rejects({ python: { ...python, run: { ...python.run, startupPaths: ['/etc/ld.so.cache', bad] } } }, /run\.startupPaths\[1\]/);
    }
    rejects({ python: { ...python, run: { ...python.run, startupPaths: '/etc' } } }, /run\.startupPaths must be an array/);
    rejects({ python: { ...python, compile: { argv: ['cc', '{files}'], startupPaths: ['lib'] } } }, /compile\.startupPaths\[0\]/);
  });
  it('a variant that is not a named pair of stages written as the runtime\'s', () => {
    const run = { argv: ['/usr/bin/python3', '-I', '{entry}'] };
    rejects({ python: { ...python, variants: [run] } }, /variants must be an object/);
    rejects({ python: { ...python, variants: { Piston: { run } } } }, /variants\.Piston: a variant's name must match/);
    rejects({ python: { ...python, variants: { piston: {} } } }, /variants\.piston\.run must be an object/);
    rejects({ python: { ...python, variants: { piston: { run, limits: {} } } } }, /variants\.piston has unknown field "limits"/);
    rejects({ python: { ...python, variants: { piston: { run: { argv: [] } } } } }, /variants\.piston\.run\.argv must not be empty/);
    rejects({ python: { ...python, variants: { piston: { run: { argv: ['/usr/bin/python3', '{files}'] } } } } }, /variants\.piston\.run\.argv may not contain "\{files\}"/);
    rejects({ python: { ...python, variants: { piston: { run: { ...run, startupPaths: ['lib'] } } } } }, /variants\.piston\.run\.startupPaths\[0\]/);
    rejects({ python: { ...python, variants: { piston: { run, compile: { argv: ['/usr/bin/cc'] } } } } }, /variants\.piston\.compile\.argv must contain "\{files\}"/);
    rejects(
      { python: { ...python, variants: { piston: { run, compile: { argv: ['/usr/bin/cc', '{files}'], limits: { cpuTimeMs: python.maxLimits.cpuTimeMs + 1 } } } } } },
      /variants\.piston\.compile\.limits\.cpuTimeMs \(\d+\) exceeds maxLimits\.cpuTimeMs/,
    );
    const [loaded] = load({ python: { ...python, variants: { piston: { $comment: 'why', run }, built: { run: { argv: ['./a.out'] }, compile: { argv: ['/usr/bin/cc', '{files}'] } } } } });
    assert.deepEqual(loaded!.variants, { piston: { run }, built: { run: { argv: ['./a.out'] }, compile: { argv: ['/usr/bin/cc', '{files}'] } } });
  });

  it('a placeholder that is none of the limits, or a whole-element one inside other text', () => {
    const run = (...flags: string[]) => ({ ...python.run, argv: ['/usr/bin/python3', ...flags, '{entry}'] });
    for (const typo of ['{memoryMib}', '{memoryMiB:150%}', '{memoryMiB:0%}', '{memoryMiB:7.5%}', '{cpuCores:50%}', '{memory}', '{stackMiB}', '{stackKiB:101%}']) {
      rejects({ python: { ...python, run: run(`-X${typo}`) } }, new RegExp(`^run\\.argv\\[1\\]: \\${typo.replace(/[.%]/g, '\\$&')} is no placeholder: a stage's limits are`));
      rejects({ python: { ...python, env: { ...python.env, LIMIT: typo } } }, /^env\.LIMIT: .* is no placeholder/);
    }
    rejects({ python: { ...python, run: run('--file={entry}') } }, /^run\.argv\[1\]: \{entry\} expands only as an element of its own, not inside "--file=\{entry\}"/);
    rejects({ python: { ...python, compile: { argv: ['/usr/bin/cc', '-o{files}'] } } }, /^compile\.argv\[1\]: \{files\} expands only as an element/);
    rejects({ python: { ...python, variants: { piston: { run: run('-X{memoryMib}') } } } }, /^variants\.piston\.run\.argv\[1\]: \{memoryMib\} is no placeholder/);
    // The limits' placeholders load, anywhere in an argv element or an env value; braces that are
    // no placeholder's (a shell's ${HOME} or ${home}, a JSON object) are the program's.
    const told = { argv: ['/usr/bin/python3', '-X{memoryMiB:75%}/{memoryBytes}', '{cpuCores}', '-Xss{stackKiB}k', '{stackBytes:50%}', 'echo ${HOME} ${home}', '{"A": 1}', '{entry}', '{args}'] };
    const [loaded] = load({ python: { ...python, run: told, env: { ...python.env, LIMIT: '{memoryBytes:90%}', THREADS: '{cpuCores}', STACK: '{stackBytes:50%}' } } });
    assert.deepEqual(loaded!.run.argv, told.argv);
    assert.equal(loaded!.env.LIMIT, '{memoryBytes:90%}');
    assert.equal(loaded!.env.STACK, '{stackBytes:50%}');
    // Braces that are no placeholder's name no limit (the job's check copies such an env once).
    assert.equal(namesLimit('{memoryBytes:90%}'), true);
    assert.equal(namesLimit('{cpuCores}'), true);
    assert.equal(namesLimit('-Xss{stackKiB}k'), true);
    assert.equal(namesLimit('${HOME} {"A": 1} {entry}'), false);
  });

  it('one alias for two runtimes of one version', () =>
    rejects({ python, snake: { ...python, id: 'snake', aliases: ['py'] } }, /name "py" version .* is also runtime "python"/));
});

describe("a runtime's variants as runtimes", () => {
  const base = python;
  const withCompile: Runtime = {
    ...base,
    compile: { argv: ['/usr/bin/cc', '{files}'], limits: { cpuTimeMs: 9000 } },
    variants: {
      direct: { run: { argv: ['/usr/bin/python3', '{entry}'], startupPaths: ['/usr/bin/python3'] } },
      built: { compile: { argv: ['/usr/bin/c++', '{files}'] }, run: { argv: ['./a.out'] } },
    },
  };

  it("are the runtime with the variant's stages: its run, and its compile or none", () => {
    const direct = variantOf(withCompile, 'direct')!;
    assert.deepEqual(direct.run, withCompile.variants!.direct!.run);
    assert.equal(direct.compile, undefined, 'a variant without a compile has none, whatever the runtime has');
    assert.equal(direct.variants, undefined, 'a variant has no variants of its own');
    assert.deepEqual(variantOf(withCompile, 'built')!.compile, { argv: ['/usr/bin/c++', '{files}'] });
    const { compile: _c, variants: _v, run: _r, ...shared } = withCompile;
    for (const [field, value] of Object.entries(shared)) assert.equal(direct[field as keyof Runtime], value, field);
    assert.deepEqual(variantsOf(withCompile), [direct, variantOf(withCompile, 'built')]);
    assert.deepEqual(withVariants([base, withCompile]), [base, withCompile, direct, variantOf(withCompile, 'built')]);
  });

  it('are made once: the same object for the same runtime and name', () => {
    assert.equal(variantOf(withCompile, 'direct'), variantOf(withCompile, 'direct'));
  });

  it('are only those the runtime names, as its own keys', () => {
    for (const name of ['nope', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) assert.equal(variantOf(withCompile, name), undefined, name);
    assert.equal(variantOf(base, 'direct'), undefined, 'a runtime without variants');
    assert.deepEqual(variantsOf(base), []);
  });
});
