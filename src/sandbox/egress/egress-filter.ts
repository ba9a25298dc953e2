import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { findBinary } from "../../settings/find-binary.js";
import { dialProblems } from "./dial-problems.js";
import { EgressNamespace } from "./egress-namespace.js";
import { EgressPolicy, type EgressPolicyOptions } from "./egress-policy.js";
import { EgressProxy } from "./egress-proxy.js";
import { forwardPlan, PROXY_HOST, type ForwardPlan } from "./forward-plan.js";
import { FORWARDER_SOURCE } from "./forwarder-source.js";
import type { HostEntry } from "../sandbox-etc.js";

export interface EgressFilterOptions extends EgressPolicyOptions {
  /**
   * `namespace`: one long-lived namespace (and forwarder) per concurrent run,
   * entered with nsenter: needs root. `launcher`: the forwarder starts inside
   * each command's own sandbox, as its parent (~0.1 s per command). Default:
   * namespace when root and nsenter is installed.
   */
  mode?: "namespace" | "launcher";
  /** Where the filter's sockets live (default: the system temp folder). */
  runRoot?: string;
}

/** What the sandbox needs to run one command behind the filter. */
export interface EgressLease {
  /** Goes in front of the whole command line (nsenter into the held namespace), or nothing. */
  prefix: string[];
  /**
   * True: bubblewrap must make a new network namespace (the forwarder is in
   * the command line). False: the sandbox stays in the namespace `prefix`
   * entered (bubblewrap's --share-net), which holds only loopback and the forwarder.
   */
  ownNamespace: boolean;
  /** bubblewrap arguments (the filter's socket, in launcher mode). */
  bwrapArgs: string[];
  /** /etc/hosts lines: allowed host names on the forwarder's loopback addresses. */
  hosts: HostEntry[];
  /** Proxy variables (set by the forwarder itself in launcher mode). */
  env: Record<string, string>;
  /** The command to run: the forwarder launching `command`, or `command` itself. */
  command(command: string[]): string[];
  /** Ends the lease: what the filter refused during the run and what the output shows was unreachable. */
  finish(output: string): string[];
}

/** The longest path a Unix socket may have (sun_path holds 108 bytes, its last a NUL). */
const MAX_SOCKET_PATH = 107;

/** The path of the filter's socket inside a launcher-mode sandbox. */
const SANDBOX_SOCKET = "/run/plangate/egress.sock";

/** The held namespaces' proxies, one per namespace, each used by one run at a time. */
interface Held {
  namespace: EgressNamespace;
  proxy: EgressProxy;
  dir: string;
}

/**
 * plangate's egress filter: every sandboxed command that needs network gets a
 * network namespace with only loopback, whose single way out is the host's
 * proxy (EgressProxy), reached through the in-sandbox forwarder. Refusals are
 * recorded per run and returned as problems a PR author can act on.
 */
export class EgressFilter {
  private readonly policy: EgressPolicy;
  private readonly plan: ForwardPlan;
  private readonly mode: "namespace" | "launcher";
  private readonly nsenter = findBinary("nsenter", "/usr/bin:/bin:/usr/sbin:/sbin");
  private readonly idle: Held[] = [];
  private readonly held = new Set<Held>();
  private root?: Promise<string>;
  private closed = false;
  /** A namespace being started ahead of the first run (see warm); the first lease waits for it rather than start another. */
  private warming?: Promise<void>;

  constructor(private readonly options: EgressFilterOptions) {
    this.policy = new EgressPolicy(options);
    this.plan = forwardPlan(options.allow);
    this.mode = options.mode ?? (process.getuid?.() === 0 && this.nsenter ? "namespace" : "launcher");
    if (this.mode === "namespace" && !this.nsenter) throw new Error("the egress filter's namespace mode needs nsenter (util-linux)");
  }

  /** Prepares one sandboxed command; bwrap and privilege (setpriv arguments) start the namespace's holder. */
  async lease(bwrap: string, privilege: string[]): Promise<EgressLease> {
    if (this.closed) throw new Error("the egress filter is closed");
    const root = await this.runRoot();
    const hosts = this.plan.hosts;
    const node = forwarderNode();
    if (this.mode === "launcher") {
      const dir = await mkdtemp(path.join(root, "run-"));
      await chmod(dir, 0o711);
      const proxy = new EgressProxy(this.policy, path.join(dir, "egress.sock"));
      await proxy.listen();
      const config = JSON.stringify({ socket: SANDBOX_SOCKET, proxyHost: PROXY_HOST, forward: this.plan.forwards });
      return {
        prefix: [],
        ownNamespace: true,
        bwrapArgs: ["--bind", proxy.socketPath, SANDBOX_SOCKET],
        hosts,
        env: {},
        command: (command) => [node, "-e", FORWARDER_SOURCE, config, "--", ...command],
        finish: once((output) => {
          const problems = [...proxy.endRun(), ...dialProblems(output, this.plan.forwards)];
          void proxy.close().then(() => rm(dir, { recursive: true, force: true }));
          return problems;
        }),
      };
    }
    const held = await this.acquire(root, bwrap, privilege, node);
    const proxy = held.namespace.proxyUrl;
    return {
      prefix: [this.nsenter ?? "nsenter", `--net=${held.namespace.path}`, "--"],
      ownNamespace: false,
      bwrapArgs: [],
      hosts,
      env: { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy },
      command: (command) => command,
      finish: once((output) => {
        const problems = [...held.proxy.endRun(), ...dialProblems(output, this.plan.forwards)];
        if (!this.closed && held.namespace.alive()) this.idle.push(held);
        else this.drop(held);
        return problems;
      }),
    };
  }

  /**
   * Starts one namespace ahead of the first run (its holder's node takes ~0.1 s to listen), so that a fresh
   * worker's first plan does not wait for it. Namespace mode only; a failure here is the first run's to meet again.
   */
  warm(bwrap: string, privilege: string[]): void {
    if (this.mode !== "namespace" || this.closed || this.warming || this.held.size) return;
    this.warming = (async () => {
      const held = await this.startHeld(await this.runRoot(), bwrap, privilege, forwarderNode());
      if (this.closed) this.drop(held);
      else this.idle.push(held);
    })().catch(() => undefined);
  }

  /** Stops every held namespace and removes the sockets. */
  async close(): Promise<void> {
    this.closed = true;
    await this.warming;
    for (const held of [...this.held]) this.drop(held);
    this.idle.length = 0;
    if (this.root) await rm(await this.root, { recursive: true, force: true }).catch(() => undefined);
  }

  /** A held namespace no other run is using: an idle one, or a new one. */
  private async acquire(root: string, bwrap: string, privilege: string[], node: string): Promise<Held> {
    if (this.warming && !this.idle.length) await this.warming;
    for (let held = this.idle.pop(); held; held = this.idle.pop()) {
      if (held.namespace.alive()) return held;
      this.drop(held);
    }
    return this.startHeld(root, bwrap, privilege, node);
  }

  /** A new held namespace with its proxy. */
  private async startHeld(root: string, bwrap: string, privilege: string[], node: string): Promise<Held> {
    const dir = await mkdtemp(path.join(root, "ns-"));
    await chmod(dir, 0o711);
    const proxy = new EgressProxy(this.policy, path.join(dir, "egress.sock"));
    await proxy.listen();
    try {
      const namespace = await EgressNamespace.start({ bwrap, privilege, node, socketDir: dir, socketPath: proxy.socketPath, forwards: this.plan.forwards });
      const held = { namespace, proxy, dir };
      this.held.add(held);
      return held;
    } catch (error) {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  private drop(held: Held): void {
    this.held.delete(held);
    held.namespace.close();
    void held.proxy.close().then(() => rm(held.dir, { recursive: true, force: true }));
  }

  /** The filter's folder of sockets, traversable by the sandbox's user. */
  private runRoot(): Promise<string> {
    this.root ??= (async () => {
      const parent = this.options.runRoot ?? os.tmpdir();
      const problem = socketFolderProblem(parent);
      if (problem) throw new Error(problem);
      await mkdir(parent, { recursive: true });
      const root = await mkdtemp(path.join(parent, "plangate-egress-"));
      await chmod(root, 0o711);
      return root;
    })();
    return this.root;
  }
}

/**
 * Why the egress filter cannot keep its sockets under `parent` (the system
 * temp folder unless set), if it cannot: a longer socket path is cut short by
 * the kernel, and every plan would fail on a socket that is not there.
 */
export function socketFolderProblem(parent = os.tmpdir()): string | undefined {
  const longest = path.join(parent, "plangate-egress-XXXXXX", "run-XXXXXX", "egress.sock");
  const bytes = Buffer.byteLength(longest);
  if (bytes <= MAX_SOCKET_PATH) return undefined;
  return `the egress filter's sockets would be at ${longest} (${bytes} bytes), past the ${MAX_SOCKET_PATH} bytes a Unix socket's path may have: set TMPDIR to a shorter folder`;
}

/** A lease ends once, whether its command finished or failed to start. */
function once(finish: (output: string) => string[]): (output: string) => string[] {
  let done = false;
  return (output) => {
    if (done) return [];
    done = true;
    return finish(output);
  };
}

/** The node the forwarder runs on: plangate's own when the sandbox can see it (under /usr), else one under /usr. */
function forwarderNode(): string {
  const candidates = [process.execPath, "/usr/bin/node", "/usr/local/bin/node"];
  const found = candidates.find((p) => p.startsWith("/usr/") && existsSync(p));
  if (!found) throw new Error("the sandbox's egress forwarder needs node under /usr (e.g. /usr/bin/node); plangate's runs at " + process.execPath);
  return found;
}
