// A streaming run's side of its stdio (Sandbox.runStreaming): the caller's writes go to the
// program's stdin, and its output comes back chunk by chunk as the program writes it. Two kinds:
// three pipes (StreamingPipes: stdout and stderr apart), or one pseudo-terminal
// (StreamingTerminal: the program's stdin, stdout and stderr, its output as `stdout`). The
// parent ends are sockets: libuv then reads them non-blocking on the event loop, where fs streams
// would hold a threadpool thread in a blocking read for as long as the program is silent.
import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import type { ConnectedStdio, PipedOutput } from './container.js';
import { native } from './native.js';
import type { StreamingIo, TerminalSize } from './types.js';

/** How long after the run's end its output may take to reach end of file before it is given up
 * on. Init kills every process of the run before it reports the end, so end of file follows at
 * once; this bounds only a copy of a write end held elsewhere for a moment (another container's
 * init between its clone and its close of what it inherited: microseconds). */
const OUTPUT_EOF_TIMEOUT_MS = 1000;
/** A terminal whose input queue is full (a program that does not read what is typed) is tried
 * again after this long, doubled each time it is still full up to the most: its master is
 * non-blocking, and Node has no poll for a tty's writability. */
const TERMINAL_WRITE_RETRY_MS = { first: 10, most: 160 };
/** The terminal's end-of-file character (VEOF's default, Ctrl-D). */
const TERMINAL_EOF = Buffer.from([0x04]);

type OutputStream = 'stdout' | 'stderr';

/** Closes a descriptor of ours (a pipe end, a terminal's side), open since we opened it: a close
 * cannot fail but by a bug, which must not keep the other ends open. */
export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // See above.
  }
}

/** Resolves once the socket is closed: at end of file (net.Socket closes itself there) or
 * destroyed. */
function closed(socket: net.Socket): Promise<void> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** What both kinds share: the program's ends to hand to its container, and the output read,
 * bounded and kept. */
export abstract class StreamingStdio {
  private childEndsOpen = true;
  /** Set once the output is final (read to its end, or given up on): nothing more goes to
   * onOutput. */
  private outputDone = false;
  private outputBytes = 0;
  private readonly kept: Record<OutputStream, Buffer[]> = { stdout: [], stderr: [] };
  private readonly truncated: Record<OutputStream, boolean> = { stdout: false, stderr: false };
  /** Kills the run once its output passes the limit; set once its container is prepared. Before
   * that a terminal's output is its echo of what was typed: a limit reached then is
   * outputLimitReached, and the run is not started (Sandbox.runStreaming). */
  killForOutput: () => void = () => {};

  protected constructor(
    /** The program's ends, as the container takes them (copies of its own). */
    readonly childEnds: ConnectedStdio,
    private readonly outputs: [OutputStream, net.Socket][],
    private readonly io: StreamingIo,
    private readonly outputLimitBytes: number,
  ) {
    for (const [name, socket] of outputs) {
      socket.on('data', (chunk: Buffer) => this.received(name, chunk));
      // A read error ends the stream like end of file (a terminal's master reads EIO once its
      // program and every process holding the terminal are gone): the run's result does not
      // depend on it.
      socket.on('error', () => socket.destroy());
    }
  }

  /** Bytes for the program's stdin, in order; nothing once it cannot take them. */
  abstract write(data: Uint8Array): void;
  /** The program's input ends (StreamingRun.end). */
  abstract end(): void;
  /** A terminal's new window size; nothing for pipes. */
  abstract resize(size: TerminalSize): void;
  /** Stops the input side at once: nothing more is written. */
  protected abstract closeInput(): void;
  /** At the output limit: no more is read (and no chunk delivered) from now on. */
  protected abstract stopReading(): void;

  /** The output passed the limit (limits.outputBytes): the run is killed for it, or not started. */
  get outputLimitReached(): boolean {
    return this.truncated.stdout || this.truncated.stderr;
  }

  /** Once the container holds its copies: ours would keep the program's stdin from reading end
   * of file after end(), and our own reads from seeing end of file once the program is gone. */
  closeChildEnds(): void {
    if (!this.childEndsOpen) return;
    this.childEndsOpen = false;
    // Each descriptor once: a terminal's peer is all three.
    const { stdinFd, stdoutFd, stderrFd } = this.childEnds;
    for (const fd of new Set([stdinFd, stdoutFd, stderrFd])) if (fd !== undefined) closeQuietly(fd);
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
    this.outputDone = true;
    this.stopReading();
    this.killForOutput();
  }

  private deliver(stream: OutputStream, chunk: Buffer): void {
    this.outputBytes += chunk.length;
    this.kept[stream].push(chunk);
    this.io.onOutput(stream, chunk);
  }

  /** Destroys the output's sockets (closing their descriptors); nothing is delivered after. */
  protected closeOutput(): void {
    this.outputDone = true;
    for (const [, socket] of this.outputs) socket.destroy();
  }

  /** Called once every process of the run is dead: resolves with the output once it has reached
   * end of file (every chunk given to onOutput by then), or after OUTPUT_EOF_TIMEOUT_MS without. */
  async readToEnd(): Promise<PipedOutput> {
    // Past the limit nothing more is read: there is no end to wait for.
    if (!this.outputDone) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, OUTPUT_EOF_TIMEOUT_MS)));
      await Promise.race([Promise.all(this.outputs.map(([, socket]) => closed(socket))), timedOut]);
      clearTimeout(timer);
    }
    this.closeOutput();
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
    this.closeInput();
    this.closeOutput();
  }
}

/** Three pipes: the program's stdin, stdout and stderr. */
export class StreamingPipes extends StreamingStdio {
  private stdinOpen = true;

  private constructor(childEnds: Required<Omit<ConnectedStdio, 'terminal'>>, private readonly stdin: net.Socket, stdout: net.Socket, stderr: net.Socket, io: StreamingIo, outputLimitBytes: number) {
    super(childEnds, [['stdout', stdout], ['stderr', stderr]], io, outputLimitBytes);
    // EPIPE once the program has closed its stdin or ended: what the caller typed after that is
    // nobody's, which is no error.
    stdin.on('error', () => {
      this.stdinOpen = false;
      stdin.destroy();
    });
    stdin.on('close', () => (this.stdinOpen = false));
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

  resize(): void {}

  protected closeInput(): void {
    this.stdinOpen = false;
    this.stdin.destroy();
  }

  /** Closed: a program that writes on gets SIGPIPE (killed, or EPIPE) instead of filling them. */
  protected stopReading(): void {
    this.closeOutput();
  }
}

/** One pseudo-terminal: its peer is the program's stdin, stdout and stderr (and its controlling
 * terminal); its master, ours, carries what is typed one way and the output the other. The master
 * is read through a tty.ReadStream (a net.Socket cannot take a tty) and written with
 * non-blocking writes of our own: a tty handle's writes are blocking ones, and a program that
 * does not read would hold the event loop. */
export class StreamingTerminal extends StreamingStdio {
  /** Typed bytes the terminal has not taken yet, in order. */
  private pending: Buffer[] = [];
  /** Writes are taken (until end() or the run's end); what is pending is written while inputOpen. */
  private writable = true;
  private inputOpen = true;
  private retry: NodeJS.Timeout | undefined;
  private retryMs = TERMINAL_WRITE_RETRY_MS.first;

  private constructor(
    peer: number,
    private readonly masterFd: number,
    private readonly master: tty.ReadStream,
    io: StreamingIo,
    outputLimitBytes: number,
  ) {
    super({ stdinFd: peer, stdoutFd: peer, stderrFd: peer, terminal: true }, [['stdout', master]], io, outputLimitBytes);
  }

  /** A terminal of that size and the stream on its master; throws what native.openTerminal
   * throws, with nothing left open. */
  static open(io: StreamingIo, outputLimitBytes: number, size: TerminalSize): StreamingTerminal {
    const [masterFd, peer] = native.openTerminal(size.rows, size.cols);
    let master: tty.ReadStream;
    try {
      master = new tty.ReadStream(masterFd);
    } catch (error) {
      closeQuietly(masterFd);
      closeQuietly(peer);
      throw error;
    }
    // The stream owns the master from here: it closes it when destroyed.
    return new StreamingTerminal(peer, masterFd, master, io, outputLimitBytes);
  }

  /** The master's descriptor is ours to write: the stream closes it when it is destroyed (at the
   * terminal's hang-up, or by us), and the number may be another file's from then on. */
  private get inputUsable(): boolean {
    return this.inputOpen && !this.master.destroyed;
  }

  write(data: Uint8Array): void {
    if (!this.writable || !this.inputUsable || data.byteLength === 0) return;
    // A copy: the caller may reuse its buffer.
    this.pending.push(Buffer.from(data));
    this.flush();
  }

  /** Ctrl-D, then nothing more (as StreamingRun.end promises); a client that goes on typing after
   * a Ctrl-D sends it as stdin instead. */
  end(): void {
    this.write(TERMINAL_EOF);
    this.writable = false;
  }

  resize(size: TerminalSize): void {
    if (!this.inputUsable) return;
    try {
      native.setTerminalSize(this.masterFd, size.rows, size.cols);
    } catch {
      // The program's end hung the terminal up: no one is left to tell.
    }
  }

  protected closeInput(): void {
    this.writable = false;
    this.inputOpen = false;
    this.pending = [];
    clearTimeout(this.retry);
    this.retry = undefined;
  }

  /** The master stays open (closing it would hang the terminal up: SIGHUP to a program not yet
   * killed, a failed TIOCSCTTY in a container still being made), read no more: a program that
   * writes on blocks until it is killed. */
  protected stopReading(): void {
    this.master.pause();
  }

  /** The master goes with the stream that owns it: the input first. */
  protected override closeOutput(): void {
    this.closeInput();
    super.closeOutput();
  }

  /** Writes what is pending until the terminal takes no more; then looks again shortly. */
  private flush(): void {
    if (this.retry !== undefined) return;
    while (this.inputUsable && this.pending.length > 0) {
      const first = this.pending[0]!;
      let written: number;
      try {
        written = fs.writeSync(this.masterFd, first);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.flush();
          }, this.retryMs);
          this.retryMs = Math.min(this.retryMs * 2, TERMINAL_WRITE_RETRY_MS.most);
          return;
        }
        // EIO: the terminal was hung up (its program is gone): what is typed is nobody's.
        this.closeInput();
        return;
      }
      this.retryMs = TERMINAL_WRITE_RETRY_MS.first;
      if (written < first.length) this.pending[0] = first.subarray(written);
      else this.pending.shift();
    }
  }
}
