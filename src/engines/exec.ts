import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";

export interface ExecRequest {
  /** argv[0] is the program; no shell is ever involved. */
  argv: string[];
  cwd: string;
  /** The complete environment of the child: nothing is inherited. */
  env: Record<string, string>;
  timeoutMs: number;
  /** Bytes of combined stdout+stderr kept (head and tail); the middle is dropped. */
  maxOutputBytes?: number;
  /** Write stdout to this file instead of capturing it (for large machine-readable output). */
  stdoutFile?: string;
  /** Files created (mode 0600) and handed to the program as fds 3, 4, …: outputs of the program's own choosing. */
  fdFiles?: string[];
  /** Aborting kills the whole group at once (a watchdog saw the program exceed a cap). */
  stop?: AbortSignal;
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
    const head = Buffer.concat(this.head).toString("utf8");
    const tail = Buffer.concat(this.tail).toString("utf8");
    return this.dropped ? `${head}\n[... ${this.dropped} bytes of output omitted ...]\n${tail}` : head + tail;
  }
}

/**
 * Runs one program defensively: its own process group, a cleared environment,
 * bounded output, and a wall-clock timeout that kills the whole group.
 */
export function execute(request: ExecRequest): Promise<ExecResult> {
  const output = new CappedOutput(request.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
  const stdoutFd = request.stdoutFile ? openSync(request.stdoutFile, "w", 0o600) : undefined;
  const extraFds = (request.fdFiles ?? []).map((file) => openSync(file, "w", 0o600));
  const closeFiles = () => {
    for (const fd of [...(stdoutFd === undefined ? [] : [stdoutFd]), ...extraFds]) closeSync(fd);
  };
  return new Promise((resolve, reject) => {
    const child = spawn(request.argv[0]!, request.argv.slice(1), {
      cwd: request.cwd,
      env: request.env,
      detached: true, // a new process group, so the timeout can kill every descendant
      stdio: ["ignore", stdoutFd ?? "pipe", "pipe", ...extraFds],
    });
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
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS).unref();
    }, request.timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => output.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      request.stop?.removeEventListener("abort", onStop);
      closeFiles();
      reject(new Error(`cannot start ${request.argv[0]}: ${error.message}`));
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      request.stop?.removeEventListener("abort", onStop);
      closeFiles();
      // Anything the program left behind in its group goes with it.
      killGroup("SIGKILL");
      resolve({ exitCode, signal, timedOut, output: output.text(), droppedBytes: output.dropped, problems: [] });
    });
  });
}
