import { spawn } from "node:child_process";
import { closeSync, constants, fstat as fstatCallback, openSync, read as readCallback } from "node:fs";
import { promisify } from "node:util";
import { systemClock, type Clock } from "./clock.js";

export interface ExecRequest {
  /** argv[0] is the program; no shell is ever involved. */
  argv: string[];
  cwd: string;
  /** The complete environment of the child: nothing is inherited. */
  env: Record<string, string>;
  timeoutMs: number;
  /** What `timeoutMs` is measured on (default: the system's clock). */
  clock?: Clock;
  /** Bytes of combined stdout+stderr kept (head and tail); the middle is dropped. */
  maxOutputBytes?: number;
  /** Write stdout to this file instead of capturing it (for large machine-readable output). */
  stdoutFile?: string;
  /**
   * Capture stdout and stderr through a new file of this name (created
   * exclusively, mode 0600, never through a link; read back through the same
   * descriptor once the program ends; the caller removes it) rather than a
   * pipe: a program that prints line by line then costs plangate nothing
   * while it runs. Its folder must be one the program cannot write.
   */
  outputFile?: string;
  /** Files created (mode 0600) and handed to the program as fds 3, 4, …: outputs of the program's own choosing. */
  fdFiles?: string[];
  /** Aborting kills the whole group at once (a watchdog saw the program exceed a cap). */
  stop?: AbortSignal;
  /** Written to the program's stdin, which is then closed (no stdin at all when absent). */
  input?: string;
}

export interface ExecResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  droppedBytes: number;
  /**
   * What the sandbox saw go wrong, in words a PR author can act on: a cap
   * exceeded, a connection the egress filter refused (each names the setting).
   */
  problems: string[];
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024;
const fstat = promisify(fstatCallback);
/** A new file, never an existing one nor a link to one: read and written through one descriptor. */
const OUTPUT_FILE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const read = promisify(readCallback);
const KILL_GRACE_MS = 3000;

/** Keeps the first and last halves of a stream once it exceeds the cap. */
class CappedOutput {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  dropped = 0;
  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    const half = Math.floor(this.cap / 2);
    if (this.headBytes < half) {
      const take = chunk.subarray(0, half - this.headBytes);
      this.head.push(take);
      this.headBytes += take.length;
      chunk = chunk.subarray(take.length);
    }
    if (!chunk.length) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tailBytes > half && this.tail.length) {
      const first = this.tail[0]!;
      const excess = this.tailBytes - half;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailBytes -= first.length;
        this.dropped += first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailBytes -= excess;
        this.dropped += excess;
      }
    }
  }

  text(): string {
    return joinOutput(Buffer.concat(this.head), Buffer.concat(this.tail), this.dropped);
  }
}

function joinOutput(head: Buffer, tail: Buffer, dropped: number): string {
  return dropped ? `${head.toString("utf8")}\n[... ${dropped} bytes of output omitted ...]\n${tail.toString("utf8")}` : head.toString("utf8") + tail.toString("utf8");
}

/** An output file's first and last halves of `cap` bytes, as CappedOutput keeps them. */
async function readCapped(fd: number, cap: number): Promise<{ text: string; dropped: number }> {
  const { size } = await fstat(fd);
  const half = Math.floor(cap / 2);
  const at = async (position: number, length: number) => {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await read(fd, buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  };
  if (size <= 2 * half) return { text: joinOutput(await at(0, size), Buffer.alloc(0), 0), dropped: 0 };
  const dropped = size - 2 * half;
  return { text: joinOutput(await at(0, half), await at(size - half, half), dropped), dropped };
}

/**
 * Runs one program defensively: its own process group, a cleared environment,
 * bounded output, and a wall-clock timeout that kills the whole group.
 */
export function execute(request: ExecRequest): Promise<ExecResult> {
  const cap = request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const output = new CappedOutput(cap);
  const outputFd = request.outputFile ? openSync(request.outputFile, OUTPUT_FILE_FLAGS, 0o600) : undefined;
  const stdoutFd = request.stdoutFile ? openSync(request.stdoutFile, "w", 0o600) : undefined;
  const extraFds = (request.fdFiles ?? []).map((file) => openSync(file, "w", 0o600));
  const closeFiles = () => {
    for (const fd of [...(stdoutFd === undefined ? [] : [stdoutFd]), ...extraFds]) closeSync(fd);
  };
  let reading: Promise<{ text: string; dropped: number }> | undefined;
  const captured = () => (reading ??= readOutput());
  const readOutput = async (): Promise<{ text: string; dropped: number }> => {
    if (outputFd === undefined) return { text: output.text(), dropped: output.dropped };
    try {
      return await readCapped(outputFd, cap);
    } finally {
      closeSync(outputFd);
    }
  };
  return new Promise((resolve, reject) => {
    const child = spawn(request.argv[0]!, request.argv.slice(1), {
      cwd: request.cwd,
      env: request.env,
      detached: true, // a new process group, so the timeout can kill every descendant
      // With the output in a file, an idle pipe every descendant inherits is what `close` waits for, as it waited for
      // stdout's: the run ends once none of its processes is left (a killed sandbox's take a moment to go).
      stdio: [request.input === undefined ? "ignore" : "pipe", stdoutFd ?? outputFd ?? "pipe", outputFd ?? "pipe", ...extraFds, ...(outputFd === undefined ? [] : ["pipe" as const])],
    });
    // A program that exits without reading all of it is no error of plangate's: its exit code says what happened.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(request.input);
    // Whatever a program writes into that pipe is thrown away: a full pipe would stop it ever reaching its end.
    if (outputFd !== undefined) (child.stdio.at(-1) as NodeJS.ReadableStream | null)?.resume();
    let timedOut = false;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const onStop = () => killGroup("SIGKILL");
    request.stop?.addEventListener("abort", onStop, { once: true });
    if (request.stop?.aborted) onStop();
    const clock = request.clock ?? systemClock;
    let cancelGrace = () => {};
    const cancelTimeout = clock.after(request.timeoutMs, () => {
      timedOut = true;
      killGroup("SIGTERM");
      cancelGrace = clock.after(KILL_GRACE_MS, () => killGroup("SIGKILL"));
    });
    const stopTimers = () => {
      cancelTimeout();
      cancelGrace();
    };
    child.stdout?.on("data", (chunk: Buffer) => output.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk));
    child.on("error", (error) => {
      stopTimers();
      request.stop?.removeEventListener("abort", onStop);
      closeFiles();
      const failed = () => reject(new Error(`cannot start ${request.argv[0]}: ${error.message}`));
      captured().then(failed, failed);
    });
    child.on("close", (exitCode, signal) => {
      stopTimers();
      request.stop?.removeEventListener("abort", onStop);
      closeFiles();
      // Anything the program left behind in its group goes with it.
      killGroup("SIGKILL");
      captured().then(
        ({ text, dropped }) => resolve({ exitCode, signal, timedOut, output: text, droppedBytes: dropped, problems: [] }),
        reject,
      );
    });
  });
}
