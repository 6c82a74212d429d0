// Client of mount-agent.py: the pool's privileged helper for mount(2), umount2(2) and flock(2),
// which Node cannot call. One agent per pool owner; requests are answered in order.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { PoolError } from './types.js';

/** Debian's interpreter, by absolute path: `python3` on PATH can be a slow shim. */
export const DEFAULT_PYTHON_PATH = '/usr/bin/python3';

interface AgentErrorReply { op: string; code: string; errno: number; message: string }
type Reply = { id: number; ok: true; [key: string]: unknown } | { id: number; ok: false; error: AgentErrorReply };

function agentScriptPath(): string {
  // Next to this module under tsx; from dist/ the script stays in src/ (tsc copies no .py).
  const candidates = [
    fileURLToPath(new URL('./mount-agent.py', import.meta.url)),
    fileURLToPath(new URL('../../../src/pool/mount-agent.py', import.meta.url)),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new PoolError('agent', 'ENOENT', `mount-agent.py not found (looked in ${candidates.join(', ')})`);
  return found;
}

export class MountAgent {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited: PoolError | undefined;
  /** close() was asked: the exit that follows is no loss. */
  private closing = false;
  private stderrTail = '';
  private lostWith: PoolError | undefined;
  private onLost!: (err: PoolError) => void;
  /** Settles (never rejects) when the agent has ended, or can serve no more requests, without
   * close() having been asked: killed from outside (the OOM killer, a kill by pid), a broken
   * pipe, a malformed reply. Its owner can then make and remove no mounts, and the flocks it held
   * (the owner dir's, the uid leases) are the kernel's to drop: see pool.ts. */
  readonly lost = new Promise<PoolError>((resolve) => (this.onLost = resolve));

  private constructor(pythonPath: string) {
    this.child = spawn(pythonPath, ['-I', '-S', agentScriptPath()], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { CELLBLOCK_AGENT_PARENT: String(process.pid) },
      // A process group of its own: a terminal's Ctrl-C (to the foreground group) never reaches
      // it, not even before its script has set SIGINT aside; it dies with its owner regardless.
      detached: true,
    });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000);
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    // A request written after the agent died but before its exit is handled fails here (EPIPE):
    // unhandled, that error would end the worker; handled, the request is rejected as a PoolError.
    this.child.stdin.on('error', (err) => this.fail(new PoolError('agent', 'EAGENTEXIT', `mount agent: ${err.message}`)));
    this.child.on('error', (err) => this.lose(new PoolError('agent', 'ESPAWN', `mount agent: ${err.message}`)));
    this.child.on('exit', (code, signal) => {
      // A malformed reply came first (and had it killed): that is the cause.
      const earlier = this.exited?.code === 'EPROTO' ? ` after ${this.exited.message}` : '';
      this.lose(new PoolError('agent', 'EAGENTEXIT', `mount agent exited (code ${code}, signal ${signal})${earlier} ${this.stderrTail.trim()}`.trim()));
    });
  }

  static async start(pythonPath = DEFAULT_PYTHON_PATH): Promise<MountAgent> {
    const agent = new MountAgent(pythonPath);
    await agent.request('ping', {});
    return agent;
  }

  /** That the agent was lost (see `lost`), as soon as anything shows it (a failed write may come
   * before its exit is handled); undefined until then. */
  get lostCause(): PoolError | undefined {
    return this.lostWith;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  request(op: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(JSON.stringify({ id, op, ...payload }) + '\n');
    });
  }

  /** Ends the agent (the owner must call it: the agent's pipes keep the event loop alive); its
   * held locks are released by the kernel as it exits. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    await exited;
  }

  private onLine(line: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      this.fail(new PoolError('agent', 'EPROTO', `mount agent sent a malformed reply: ${line.slice(0, 200)}`));
      return;
    }
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply);
    else waiter.reject(new PoolError(reply.error.op, reply.error.code, reply.error.message, reply.error.errno));
  }

  private fail(err: PoolError): void {
    if (this.exited) return;
    this.exited = err;
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
    if (this.closing) return;
    this.lostWith = err;
    // One that still runs (a malformed reply) ends too: nothing is asked of it any more, and its
    // locks should not outlive its use. Its exit then settles `lost`.
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** The agent is gone: `lost` settles with how it ended (a write to it may have failed first,
   * EPIPE, which says less). */
  private lose(err: PoolError): void {
    this.fail(err);
    // Lost before a close() that came before its exit was heard: lost all the same.
    if (!this.closing || this.lostWith) this.onLost(err);
  }
}
