// The worker's start-up checks: the cgroups its sandboxes need, refused in the sandbox's own line;
// the host's user database, whose accounts with the sandbox uids are found in passwd lines from
// any source, and whose reading never fails nor holds up the start.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  accountsWithSandboxUids,
  checkKernelRelease,
  checkWorkerMachine,
  readHostPasswd,
  sandboxUidAccountsWarning,
  WorkerPreflightError,
  type PasswdText,
} from '../../src/bin/worker-preflight.js';
import { detectCgroupLayout } from '../../src/sandbox/cgroups/detect.js';
import { SandboxError } from '../../src/sandbox/types.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'below:x:59999:59999::/home/below:/bin/sh',
  'first:x:60000:60000::/home/first:/bin/sh',
  // systemd-homed's users: 60001-60513.
  'alice:x:60001:60001:Alice:/home/alice:/bin/bash',
  'last:x:61023:61023::/home/last:/bin/sh',
  'above:x:61024:61024::/home/above:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  // The images' own names for the sandbox uids (images/build/finalize-root.sh): not host accounts.
  'sandbox:x:60000:60000:cellblock sandbox:/box:/usr/sbin/nologin',
  'sandbox:x:60700:60000:cellblock sandbox:/box:/usr/sbin/nologin',
  // Named so, but not the images' entry: another group.
  'sandbox:x:60800:100::/home/sandbox:/bin/sh',
  // The same account from two sources (files, then a directory): named once.
  'alice:x:60001:60001:Alice:/home/alice:/bin/bash',
  // Malformed, or not accounts.
  '',
  'short:x:60002:60002',
  'long:x:60003:60003::/home/long:/bin/sh:extra',
  'word:x:sixty:60000::/:/bin/sh',
  'exponent:x:6e4:60000::/:/bin/sh',
  'spaced:x: 60004:60000::/:/bin/sh',
  'negative:x:-60005:60000::/:/bin/sh',
  ':x:60006:60000::/:/bin/sh',
  '+::::::',
  '+nisuser:x:60007:60000::/:/bin/sh',
  '-excluded:x:60008:60000::/:/bin/sh',
  'huge:x:99999999999:60000::/:/bin/sh',
].join('\n');

test('accounts with sandbox uids: 60000-61023 inclusive, not the images\' own "sandbox", malformed lines skipped', () => {
  assert.deepEqual(accountsWithSandboxUids(PASSWD), [
    { name: 'first', uid: 60000 },
    { name: 'alice', uid: 60001 },
    { name: 'sandbox', uid: 60800 },
    { name: 'last', uid: 61023 },
  ]);
  assert.deepEqual(accountsWithSandboxUids(''), []);
  assert.deepEqual(accountsWithSandboxUids('root:x:0:0:root:/root:/bin/bash\n'), []);
});

test('the warning names the range, each uid and user, and why it matters, in one line', () => {
  const line = sandboxUidAccountsWarning(accountsWithSandboxUids(PASSWD));
  assert.doesNotMatch(line, /\n/);
  assert.match(line, /60000-61023/);
  for (const named of ['60000 (first)', '60001 (alice)', '60800 (sandbox)', '61023 (last)']) assert.ok(line.includes(named), `${named} in: ${line}`);
  assert.match(line, /signal/);
  assert.match(line, /per-user limits/);
  // Hundreds (systemd-homed's whole range): the first are named, the rest counted.
  const many = Array.from({ length: 513 }, (_, i) => ({ name: `user${i}`, uid: 60001 + i }));
  const long = sandboxUidAccountsWarning(many);
  assert.ok(long.includes('60001 (user0)'));
  assert.ok(!long.includes('(user16)'));
  assert.match(long, /and 497 more/);
});

const NO_DATA = { dataDir: '/nonexistent-cellblock-data', cgroupBase: 'root' } as const;
/** The cgroup check passing, as on a machine whose cgroups a sandbox can use. */
const cgroupsUsable = () => {};

test('the worker check reports the accounts of the passwd source it is given, and starts when that source fails', async () => {
  const config = NO_DATA;
  const given = (text: string): (() => PasswdText) => () => ({ source: 'test passwd', text });
  const report = await checkWorkerMachine(config, [], 0, given(PASSWD), cgroupsUsable);
  assert.deepEqual(report.sandboxUidAccounts.map((account) => account.uid), [60000, 60001, 60800, 61023]);
  assert.equal(report.passwdSource, 'test passwd');
  assert.deepEqual(report.missingImages, []);
  assert.deepEqual((await checkWorkerMachine(config, [], 0, given('alice:x:1000:1000::/home/alice:/bin/bash\n'), cgroupsUsable)).sandboxUidAccounts, []);
  const unreadable = await checkWorkerMachine(config, [], 0, () => undefined, cgroupsUsable);
  assert.deepEqual(unreadable.sandboxUidAccounts, []);
  assert.equal(unreadable.passwdSource, undefined);
  const failing = await checkWorkerMachine(
    config,
    [],
    0,
    () => {
      throw new Error('getent crashed');
    },
    cgroupsUsable,
  );
  assert.deepEqual(failing.sandboxUidAccounts, []);
});

test("the worker check refuses, in the sandbox's own line, cgroups no sandbox could be made in, for the base configured; other failures of the check pass through", async () => {
  const refusal =
    'cgroup v2: the cgroup cellblock was started in (/sys/fs/cgroup/mid/svc2, CELLBLOCK_CGROUP_BASE=delegated) lacks memory (its cgroup.controllers: cpu pids): its manager did not delegate them (systemd: Delegate=yes, or Delegate=cpu memory pids)';
  const bases: string[] = [];
  const refusing = (base: string) => {
    bases.push(base);
    throw new SandboxError('cgroup_delegate', 2, 'ENOENT', refusal);
  };
  const none = () => undefined;
  await assert.rejects(checkWorkerMachine({ ...NO_DATA, cgroupBase: 'delegated' }, [], 0, none, refusing), (error: unknown) => error instanceof WorkerPreflightError && error.message === refusal);
  assert.deepEqual(bases, ['delegated'], 'checked for the base the workers would use');
  // Root comes first: a user who is not root is told that, whatever the cgroups.
  await assert.rejects(checkWorkerMachine(NO_DATA, [], 1000, none, refusing), /a worker needs root/);
  const bug = new TypeError('a bug in the check');
  await assert.rejects(
    checkWorkerMachine(NO_DATA, [], 0, none, () => {
      throw bug;
    }),
    (error: unknown) => error === bug,
  );
});

test('the worker check refuses a kernel below 5.9 (no close_range) in one line naming the release, after root and before the cgroups', async () => {
  for (const release of ['5.8.18-100.fc31.x86_64', '4.19.0-27-amd64', '3.10.0-1160.el7.x86_64', '5.4.0']) {
    assert.throws(
      () => checkKernelRelease(release),
      (error: unknown) =>
        error instanceof WorkerPreflightError && !error.message.includes('\n') && error.message.includes(`Linux ${release}, below 5.9`) && /close_range/.test(error.message),
      release,
    );
  }
  // 5.10 is above 5.9 (not compared as text), as is any later major.
  for (const release of ['5.9.0', '5.10.0-33-amd64', '5.15.0-91-generic', '6.1.0-18-amd64', '6.18.0', '10.0.0', 'unknown']) checkKernelRelease(release);
  const cgroupsChecked: string[] = [];
  const checkCgroups = (base: string) => void cgroupsChecked.push(base);
  await assert.rejects(checkWorkerMachine(NO_DATA, [], 0, () => undefined, checkCgroups, '5.8.0'), (error: unknown) => error instanceof WorkerPreflightError && /Linux 5\.8\.0, below 5\.9/.test(error.message));
  assert.deepEqual(cgroupsChecked, [], 'refused before the cgroups are checked');
  await assert.rejects(checkWorkerMachine(NO_DATA, [], 1000, () => undefined, checkCgroups, '5.8.0'), /a worker needs root/);
  await checkWorkerMachine(NO_DATA, [], 0, () => undefined, checkCgroups, '5.10.0');
  assert.deepEqual(cgroupsChecked, ['root']);
});

test("the worker check passes this host's cgroups with its own check (the sandbox's), as its workers' sandboxes are made here", { skip: process.geteuid?.() !== 0 && 'needs root' }, async () => {
  const layout = detectCgroupLayout();
  // On v1 every base passes; on v2 the test's own cgroup may lack controllers a delegated base needs.
  for (const cgroupBase of layout.version === 'v1' ? (['root', 'delegated'] as const) : (['root'] as const)) {
    const report = await checkWorkerMachine({ ...NO_DATA, cgroupBase }, [], 0, () => undefined);
    assert.deepEqual(report.missingImages, [], cgroupBase);
  }
});

test('the host database is read with getent, else from the passwd file: getent missing, failing or too slow', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellblock-preflight-test-'));
  try {
    const passwdFile = join(dir, 'passwd');
    writeFileSync(passwdFile, 'alice:x:60001:60001::/home/alice:/bin/sh\n');
    const script = (name: string, body: string) => {
      const path = join(dir, name);
      writeFileSync(path, `#!/bin/sh\n${body}\n`);
      chmodSync(path, 0o755);
      return path;
    };
    const listing = script('getent-listing', `[ "$1" = passwd ] && echo 'bob:x:60002:60002::/home/bob:/bin/sh'`);
    assert.deepEqual(readHostPasswd(listing, passwdFile), { source: `${listing} passwd`, text: 'bob:x:60002:60002::/home/bob:/bin/sh\n' });
    const expectFile = { source: passwdFile, text: 'alice:x:60001:60001::/home/alice:/bin/sh\n' };
    assert.deepEqual(readHostPasswd(join(dir, 'no-such-getent'), passwdFile), expectFile);
    // Exit 3: enumeration not supported.
    assert.deepEqual(readHostPasswd(script('getent-failing', 'echo partial; exit 3'), passwdFile), expectFile);
    const startedAt = Date.now();
    assert.deepEqual(readHostPasswd(script('getent-hanging', 'exec sleep 30'), passwdFile), expectFile);
    assert.ok(Date.now() - startedAt < 5000, `gave up on getent after ${Date.now() - startedAt} ms`);
    assert.equal(readHostPasswd(join(dir, 'no-such-getent'), join(dir, 'no-such-passwd')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
