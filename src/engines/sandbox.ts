import { execFileSync } from "node:child_process";
import { existsSync, lstatSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { execute, type ExecResult } from "./exec.js";

export interface SandboxRequest {
  /** Absolute program path and its arguments. */
  command: string[];
  /** The private writable workspace (host path); the working directory unless `cwd` is given. */
  workDir: string;
  /** A working directory inside workDir. */
  cwd?: string;
  /** Folders put in front of the sandbox's fixed PATH (e.g. a program's node_modules/.bin). */
  pathPrefix?: string[];
  network: boolean;
  /** Variables passed in on top of PATH and HOME; nothing else is inherited. */
  env: Record<string, string>;
  /** Extra host paths the program may read (its binary's folder, a CLI config). */
  readOnly?: string[];
  /** Extra host paths the program may write (a plugin cache). */
  writable?: string[];
  timeoutMs: number;
  maxOutputBytes?: number;
  stdoutFile?: string;
}

export interface SandboxLimits {
  /** Address space per process, bytes (terraform and node need about 1 GiB). */
  addressSpaceBytes: number;
  fileSizeBytes: number;
  openFiles: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
  addressSpaceBytes: 8 * 1024 ** 3,
  fileSizeBytes: 2 * 1024 ** 3,
  openFiles: 4096,
};

const SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin";
const NOBODY = 65534;
const ETC_FILES = ["resolv.conf", "hosts", "nsswitch.conf", "gai.conf", "ssl", "ca-certificates", "pki", "localtime", "passwd", "group"];

export type SandboxKind = "bwrap" | "none";

function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** True when bubblewrap is installed and can create its namespaces here. */
export function bwrapWorks(): boolean {
  const bwrap = findProgram("bwrap");
  if (!bwrap) return false;
  try {
    execFileSync(bwrap, ["--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs untrusted programs (terraform on PR code, cdktf synth): cleared
 * environment, private workspace, the rest of the filesystem read-only and
 * mostly absent, optional network, rlimits and a wall-clock timeout.
 */
export class Sandbox {
  private readonly dropPrivileges = process.getuid?.() === 0;
  private readonly prlimit = findProgram("prlimit");
  private readonly setpriv = findProgram("setpriv");

  constructor(
    readonly kind: SandboxKind,
    private readonly limits: SandboxLimits = DEFAULT_LIMITS,
  ) {}

  async run(request: SandboxRequest): Promise<ExecResult> {
    const home = path.join(request.workDir, ".home");
    await mkdir(home, { recursive: true });
    if (this.dropPrivileges) await this.giveToNobody([request.workDir, ...(request.writable ?? [])]);
    const env = { ...request.env, PATH: [...(request.pathPrefix ?? []), SANDBOX_PATH].join(":"), HOME: home };
    const cwd = request.cwd ?? request.workDir;
    if (cwd !== request.workDir && !cwd.startsWith(request.workDir + path.sep)) throw new Error(`sandbox cwd ${cwd} is outside its workspace`);
    const inner = this.kind === "bwrap" ? [...this.bwrapArgs(request, env), "--", ...request.command] : request.command;
    const argv = [...this.limitArgs(request.timeoutMs), ...this.privilegeArgs(), ...inner];
    return execute({
      argv,
      cwd,
      env: this.kind === "bwrap" ? {} : env,
      timeoutMs: request.timeoutMs,
      maxOutputBytes: request.maxOutputBytes,
      stdoutFile: request.stdoutFile,
    });
  }

  private limitArgs(timeoutMs: number): string[] {
    if (!this.prlimit) return [];
    const cpuSeconds = Math.ceil(timeoutMs / 1000) * 2;
    return [
      this.prlimit,
      `--as=${this.limits.addressSpaceBytes}`,
      `--fsize=${this.limits.fileSizeBytes}`,
      `--nofile=${this.limits.openFiles}`,
      `--cpu=${cpuSeconds}`,
      "--core=0",
      "--",
    ];
  }

  private privilegeArgs(): string[] {
    if (!this.dropPrivileges || !this.setpriv) return [];
    return [this.setpriv, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"];
  }

  private bwrapArgs(request: SandboxRequest, env: Record<string, string>): string[] {
    const args = [findProgram("bwrap") ?? "bwrap", "--ro-bind", "/usr", "/usr"];
    for (const top of ["bin", "lib", "lib64", "sbin"]) {
      const host = `/${top}`;
      if (!existsSync(host)) continue;
      if (lstatSync(host).isSymbolicLink()) args.push("--symlink", `usr/${top}`, host);
      else args.push("--ro-bind", host, host);
    }
    for (const name of ETC_FILES) args.push("--ro-bind-try", `/etc/${name}`, `/etc/${name}`);
    args.push("--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp");
    for (const p of request.readOnly ?? []) args.push("--ro-bind", p, p);
    for (const p of request.writable ?? []) args.push("--bind", p, p);
    args.push("--bind", request.workDir, request.workDir, "--chdir", request.cwd ?? request.workDir);
    args.push("--unshare-all");
    if (request.network) args.push("--share-net");
    args.push("--die-with-parent", "--new-session", "--clearenv");
    for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
    return args;
  }

  private async giveToNobody(paths: string[]): Promise<void> {
    for (const p of paths) {
      await execute({ argv: ["chown", "-R", `${NOBODY}:${NOBODY}`, p], cwd: "/", env: {}, timeoutMs: 60_000 });
    }
  }
}

/** Picks the sandbox for PLANGATE_SANDBOX; `auto` falls back to none with one warning. */
export function chooseSandbox(setting: "auto" | "bwrap" | "none", warn: (message: string) => void): SandboxKind {
  if (setting === "none") return "none";
  if (bwrapWorks()) return "bwrap";
  if (setting === "bwrap") {
    throw new Error("PLANGATE_SANDBOX is bwrap, but bubblewrap is missing or cannot create namespaces here (apt-get install bubblewrap)");
  }
  warn("bubblewrap (bwrap) is not usable here: plans run WITHOUT a sandbox. Install bubblewrap, or set PLANGATE_SANDBOX=none to acknowledge.");
  return "none";
}
