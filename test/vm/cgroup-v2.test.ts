// The cgroup v2 backend, tested for real on a host whose own hierarchy is v1: the engine's, the
// pool's and the executor's tests, and the service's end to end (HTTP, Redis, a worker), run
// again inside a throwaway VM whose only hierarchy is cgroup v2 (scripts/vm/run.sh: Debian's
// kernel under qemu, the host's files read-only). There every cgroup the sandbox makes, limits,
// measures, kills and removes is a v2 one, and test/sandbox/cgroups.test.ts's v2 tests, skipped
// on this host, run.
// On a v2 host those tests run natively and this file skips.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { detectCgroupLayout } from '../../src/sandbox/cgroups/detect.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The test files that drive the cgroup backend: the engine, the pool, the executor, and the
 * service around them (a queue worker on the real executor, jobs through HTTP and a private Redis). */
const FILES_IN_VM = [
  'test/sandbox/cgroups.test.ts',
  'test/sandbox/run.test.ts',
  'test/sandbox/limits.test.ts',
  'test/sandbox/hostile.test.ts',
  'test/sandbox/leaks.test.ts',
  'test/sandbox/streaming.test.ts',
  'test/pool/pool.test.ts',
  'test/pool/crash.test.ts',
  'test/executor/executor.test.ts',
  'test/service/jobs-e2e.test.ts',
];
/** The executor's soak test in the VM: software emulation runs a job ~30x slower than here. */
const SOAK_JOBS_IN_VM = 300;
const VM_TIMEOUT_S = 1500;

function skipReason(): string | false {
  if (process.env.CELLBLOCK_IN_VM) return 'already inside the test VM';
  if (process.getuid?.() !== 0) return 'needs root (qemu, and the engine inside the VM)';
  if (process.arch !== 'x64') return `the test VM boots an amd64 kernel; this machine is ${process.arch}`;
  let version: string;
  try {
    version = detectCgroupLayout().version;
  } catch {
    version = 'unusable';
  }
  if (version === 'v2') return "this host's hierarchy is cgroup v2: the v2 backend's tests run natively";
  return false;
}
const skip = skipReason();
if (skip) console.log(`SKIP cgroup v2 VM tests: ${skip}`);

interface Summary {
  tests: number;
  pass: number;
  fail: number;
  skipped: number;
}

/** The counts the spec reporter prints at the end ("ℹ tests 57" ...), or null without them. */
function summaryOf(output: string): Summary | null {
  const count = (name: string): number | null => {
    const match = new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output);
    return match ? Number(match[1]) : null;
  };
  const [tests, pass, fail, skipped] = ['tests', 'pass', 'fail', 'skipped'].map(count);
  if (tests == null || pass == null || fail == null || skipped == null) return null;
  return { tests, pass, fail, skipped };
}

/** What a failure report needs from the VM's output: every line but a passing test's, a suite's
 * header and the summary. A test file that dies of a signal shows only as "✖ <file> 'test
 * failed'"; the kernel's log, printed after the tests (KERNEL_REPORT), says what killed it. */
function failureDetail(output: string): string {
  const unusual = output.split('\n').filter((line) => line.trim() !== '' && !/^\s*(✔|▶|ℹ)/.test(line));
  return `--- the VM's output but passing tests (last ${DETAIL_CHARS} characters) ---\n${unusual.join('\n').slice(-DETAIL_CHARS)}`;
}
const DETAIL_CHARS = 30_000;
/** Runs its arguments, then prints the processes the VM's kernel killed (the OOM killer: the
 * test programs' expected memory_limit runs among them) or saw crash, and exits with the
 * command's status. */
const KERNEL_REPORT =
  '"$@"; status=$?; echo "--- the kernel\'s killed and crashed processes:"; ' +
  "dmesg | grep -E 'Killed process|segfault|general protection|trap' | tail -n 40; exit $status";

function runInVm(files: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'bash',
      [
        'scripts/vm/run.sh',
        '--timeout',
        String(VM_TIMEOUT_S),
        '--',
        'sh',
        '-c',
        KERNEL_REPORT,
        'sh',
        process.execPath,
        '--import',
        'tsx',
        '--test',
        '--test-concurrency=1',
        '--test-reporter=spec',
        ...files,
      ],
      {
        cwd: REPO,
        // The service's warnings and errors go to the output, which a failure report shows.
        env: { ...process.env, NO_COLOR: '1', CELLBLOCK_POOL_SOAK_JOBS: String(SOAK_JOBS_IN_VM), CELLBLOCK_TEST_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    // Decoded once at the end: a chunk may end inside a UTF-8 character (the reporter's ✔).
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output: Buffer.concat(chunks).toString().replace(/\r\n/g, '\n') }));
  });
}

test('the engine, pool, executor and end-to-end service tests pass on a cgroup v2 kernel', { skip, timeout: (VM_TIMEOUT_S + 60) * 1000 }, async (t) => {
  for (const file of FILES_IN_VM) readFileSync(path.join(REPO, file)); // a renamed file fails here
  const { status, output } = await runInVm(FILES_IN_VM);
  const summary = summaryOf(output);
  const detail = failureDetail(output);
  assert.ok(summary, `no test summary from the VM (status ${status})\n${detail}`);
  t.diagnostic(`in the cgroup v2 VM: ${summary.tests} tests, ${summary.pass} passed, ${summary.skipped} skipped`);
  assert.equal(summary.fail, 0, `tests failed in the cgroup v2 VM\n${detail}`);
  // Nothing may skip there: a skip would mean the VM lacked what the v2 backend needs.
  assert.equal(summary.skipped, 0, `tests skipped in the cgroup v2 VM\n${detail}`);
  assert.match(output, /✔ is the backend in use, and enforces and measures memory, CPU and pids/);
  assert.equal(status, 0, `the VM's test run exited with ${status}\n${detail}`);
});
