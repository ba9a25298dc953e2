import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, fstatSync, openSync } from "node:fs";
import { systemRootArgs } from "../system-root.js";
import { FORWARDER_SOURCE } from "./forwarder-source.js";
import { PROXY_HOST, type Forward } from "./forward-plan.js";

/** How long the forwarder may take to listen (node starts in ~0.1 s). */
const START_TIMEOUT_MS = 15_000;
/** Bytes of the holder's stderr kept for the error when it fails to start. */
const STDERR_KEPT = 2048;

export interface NamespaceSpec {
  bwrap: string;
  /** setpriv arguments that drop to the sandbox's user (empty when not root). */
  privilege: string[];
  node: string;
  /** The folder holding the filter's Unix socket, bound into the holder at the same path. */
  socketDir: string;
  socketPath: string;
  forwards: Forward[];
}

/**
 * A network namespace with only loopback, held open by a bubblewrap sandbox
 * running the forwarder (so its node starts once, not per command). Sandboxed
 * commands enter it with `nsenter --net=PATH` (root only) and share nothing
 * else with the holder. PATH is this process's own descriptor of the
 * namespace, checked against the one bubblewrap reported, so a recycled
 * process id can never lead a command into another namespace.
 */
export class EgressNamespace {
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly fd: number,
    /** The in-sandbox HTTP proxy URL (for HTTPS_PROXY and friends). */
    readonly proxyUrl: string,
    /** Listeners that could not be made (an ALLOW entry's address in use). */
    readonly failed: string[],
  ) {
    child.once("exit", () => (this.exited = true));
  }

  /** The path nsenter opens to enter the namespace. */
  get path(): string {
    return `/proc/${process.pid}/fd/${this.fd}`;
  }

  alive(): boolean {
    return !this.exited && this.child.exitCode === null && this.child.signalCode === null;
  }

  static async start(spec: NamespaceSpec): Promise<EgressNamespace> {
    const config = JSON.stringify({ socket: spec.socketPath, proxyHost: PROXY_HOST, forward: spec.forwards });
    const argv = [
      ...spec.privilege,
      spec.bwrap,
      ...systemRootArgs(),
      "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
      "--bind", spec.socketDir, spec.socketDir,
      "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--info-fd", "3",
      "--", spec.node, "-e", FORWARDER_SOURCE, config,
    ];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe", "pipe"] });
    const streams = [child.stdout!, child.stderr!, child.stdio[3] as NodeJS.ReadableStream & { unref?: () => void }];
    let stdout = "";
    let stderr = "";
    let info = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT)));
    streams[2]!.on("data", (chunk: Buffer) => (info += chunk.toString()));
    const fail = (why: string) => {
      child.kill("SIGKILL");
      return new Error(`the sandbox's egress namespace did not start: ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`);
    };
    const ready = await new Promise<{ proxy: string; failed: string[] }>((resolve, reject) => {
      const timer = setTimeout(() => reject(fail("timed out")), START_TIMEOUT_MS);
      const check = () => {
        const line = stdout.split("\n")[0];
        if (stdout.includes("\n") && line && /\}\s*$/.test(info.trim())) {
          clearTimeout(timer);
          resolve(JSON.parse(line));
        }
      };
      child.stdout!.on("data", check);
      streams[2]!.on("data", check);
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(fail(error.message));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(fail(`exited (${code ?? signal})`));
      });
    });
    const reported = JSON.parse(info) as { "child-pid": number; "net-namespace": number };
    let fd: number;
    try {
      fd = openSync(`/proc/${reported["child-pid"]}/ns/net`, "r");
    } catch (error) {
      throw fail((error as Error).message);
    }
    if (fstatSync(fd).ino !== reported["net-namespace"]) {
      closeSync(fd);
      throw fail("its process vanished before its namespace could be opened");
    }
    // Idle holders must not keep plangate (or a test run) alive; --die-with-parent ends them with it.
    child.unref();
    for (const stream of streams) (stream as { unref?: () => void }).unref?.();
    return new EgressNamespace(child, fd, ready.proxy, ready.failed);
  }

  close(): void {
    this.child.kill("SIGKILL");
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
