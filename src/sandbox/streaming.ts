// A streaming run's side of its three pipes (Sandbox.runStreaming): the caller's writes go to the
// program's stdin, and its stdout and stderr come back chunk by chunk as the program writes them.
// The parent ends are net.Sockets: libuv then reads and writes them non-blocking on the event
// loop, where fs streams would hold a threadpool thread in a blocking read for as long as the
// program is silent.
import fs from 'node:fs';
import net from 'node:net';
import type { ConnectedStdio, PipedOutput } from './container.js';
import { native } from './native.js';
import type { StreamingIo } from './types.js';

/** How long after the run's end its output pipes may take to reach end of file before they are
 * given up on. Init kills every process of the run before it reports the end, so end of file
 * follows at once; this bounds only a copy of a write end held elsewhere for a moment (another
 * container's init between its clone and its close of what it inherited: microseconds). */
const OUTPUT_EOF_TIMEOUT_MS = 1000;

type OutputStream = 'stdout' | 'stderr';

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Ours, open since createPipe: a close cannot fail but by a bug, and must not keep the other
    // ends open.
  }
}

/** Resolves once the socket is closed: at end of file (net.Socket closes itself there) or
 * destroyed. */
function closed(socket: net.Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

export class StreamingPipes {
  private childEndsOpen = true;
  private stdinOpen = true;
  /** Set once the output is final (both pipes read to their end, or given up on): nothing more
   * goes to onOutput. */
  private outputDone = false;
  private outputBytes = 0;
  private readonly kept: Record<OutputStream, Buffer[]> = { stdout: [], stderr: [] };
  private readonly truncated: Record<OutputStream, boolean> = { stdout: false, stderr: false };
  /** Kills the run once its output passes the limit; set once its container is prepared (before
   * that the program has not started, and writes nothing). */
  killForOutput: () => void = () => {};

  private constructor(
    /** The program's ends: the container takes copies, closeChildEnds closes these. */
    readonly childEnds: Required<ConnectedStdio>,
    private readonly stdin: net.Socket,
    private readonly stdout: net.Socket,
    private readonly stderr: net.Socket,
    private readonly io: StreamingIo,
    private readonly outputLimitBytes: number,
  ) {
    // EPIPE once the program has closed its stdin or ended: what the caller typed after that is
    // nobody's, which is no error.
    stdin.on('error', () => {
      this.stdinOpen = false;
      stdin.destroy();
    });
    stdin.on('close', () => (this.stdinOpen = false));
    for (const [name, socket] of [['stdout', stdout], ['stderr', stderr]] as const) {
      socket.on('data', (chunk: Buffer) => this.received(name, chunk));
      // A read error ends the stream like end of file: the run's result does not depend on it.
      socket.on('error', () => socket.destroy());
    }
  }

  /** Three pipes and the sockets on their parent ends; throws what native.createPipe throws,
   * with nothing left open. */
  static open(io: StreamingIo, outputLimitBytes: number): StreamingPipes {
    const rawFds: number[] = [];
    const sockets: net.Socket[] = [];
    const pipe = (): [number, number] => {
      const ends = native.createPipe();
      rawFds.push(...ends);
      return ends;
    };
    const adopt = (fd: number, direction: 'read' | 'write'): net.Socket => {
      const socket = new net.Socket({ fd, readable: direction === 'read', writable: direction === 'write' });
      // The socket owns the descriptor from here: it closes it when destroyed.
      rawFds.splice(rawFds.indexOf(fd), 1);
      sockets.push(socket);
      return socket;
    };
    try {
      const [stdinRead, stdinWrite] = pipe();
      const [stdoutRead, stdoutWrite] = pipe();
      const [stderrRead, stderrWrite] = pipe();
      return new StreamingPipes(
        { stdinFd: stdinRead, stdoutFd: stdoutWrite, stderrFd: stderrWrite },
        adopt(stdinWrite, 'write'),
        adopt(stdoutRead, 'read'),
        adopt(stderrRead, 'read'),
        io,
        outputLimitBytes,
      );
    } catch (error) {
      for (const socket of sockets) socket.destroy();
      for (const fd of rawFds) closeQuietly(fd);
      throw error;
    }
  }

  /** Once the container holds its copies: ours would keep the program's stdin from reading end
   * of file after end(), and our own reads from seeing end of file once the program is gone. */
  closeChildEnds(): void {
    if (!this.childEndsOpen) return;
    this.childEndsOpen = false;
    for (const fd of Object.values(this.childEnds)) closeQuietly(fd);
  }

  write(data: Uint8Array): void {
    if (!this.stdinOpen) return;
    // A copy: the socket holds what it is given until the pipe takes it.
    this.stdin.write(Buffer.from(data));
  }

  end(): void {
    if (!this.stdinOpen) return;
    this.stdinOpen = false;
    // end() flushes what is queued and then closes the descriptor: the program reads end of file.
    this.stdin.end();
  }

  private received(stream: OutputStream, chunk: Buffer): void {
    if (this.outputDone) return;
    const roomBytes = this.outputLimitBytes - this.outputBytes;
    if (chunk.length <= roomBytes) {
      this.deliver(stream, chunk);
      return;
    }
    if (roomBytes > 0) this.deliver(stream, chunk.subarray(0, roomBytes));
    this.truncated[stream] = true;
    // Nothing more is wanted: the run is being killed, and a program that writes on meanwhile
    // gets SIGPIPE instead of filling the pipes.
    this.finishOutput();
    this.killForOutput();
  }

  private deliver(stream: OutputStream, chunk: Buffer): void {
    this.outputBytes += chunk.length;
    this.kept[stream].push(chunk);
    this.io.onOutput(stream, chunk);
  }

  private finishOutput(): void {
    this.outputDone = true;
    this.stdout.destroy();
    this.stderr.destroy();
  }

  /** Called once every process of the run is dead: resolves with the output once both pipes
   * have reached end of file (every chunk given to onOutput by then), or after
   * OUTPUT_EOF_TIMEOUT_MS without. */
  async readToEnd(): Promise<PipedOutput> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, OUTPUT_EOF_TIMEOUT_MS)));
    await Promise.race([Promise.all([closed(this.stdout), closed(this.stderr)]), timedOut]);
    clearTimeout(timer);
    this.finishOutput();
    return {
      stdout: Buffer.concat(this.kept.stdout),
      stderr: Buffer.concat(this.kept.stderr),
      stdoutTruncated: this.truncated.stdout,
      stderrTruncated: this.truncated.stderr,
    };
  }

  /** Closes every descriptor still open here; idempotent. The run's result has settled (or
   * never will run): no chunk goes to onOutput after this. */
  destroy(): void {
    this.closeChildEnds();
    this.stdinOpen = false;
    this.stdin.destroy();
    this.finishOutput();
  }
}
