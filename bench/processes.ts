// Real plangate processes (`node bin/plangate.js start|worker`) against the test
// suite's fake GitHub Enterprise and a fresh database, and their memory from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../src/db/embedded.js";
import { databaseHostPort, WEBHOOK_SECRET } from "../test/support/app-harness.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { FakeGitHub } from "../test/support/fake-github.js";

export interface Deployment {
  fake: FakeGitHub;
  db: TestDatabase;
  /** The settings every plangate process of this deployment shares (one database, one key). */
  env: Record<string, string>;
  processes: ChildProcess[];
  close(): Promise<void>;
}

/** A fake GitHub, a fresh database and the shared settings; no process yet. */
export async function deployment(extra: Record<string, string> = {}): Promise<Deployment> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const fake = new FakeGitHub(publicKey.export({ type: "spki", format: "pem" }).toString());
  await fake.start();
  const db = await createTestDatabase();
  const env: Record<string, string> = {
    APP_ID: "4242",
    PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    WEBHOOK_SECRET,
    GHE_HOST: fake.host,
    GHE_PROTOCOL: "http",
    DATABASE_URL: db.url,
    PLANGATE_ENCRYPTION_KEY: "22".repeat(32),
    PLANGATE_SANDBOX: "bwrap",
    PLANGATE_SANDBOX_EGRESS_ALLOW: databaseHostPort(db.url),
    PLANGATE_JOB_TIMEOUT: "600s",
    ...(process.env.JEST_WORKER_ID ? { PLANGATE_GITHUB_WRITE_INTERVAL: "50ms" } : {}), // as the test harness
    PLANGATE_PUBLIC_URL: "http://127.0.0.1:9", // run page links only; nothing is served there
    LOG_LEVEL: "warn",
    ...extra,
  };
  const processes: ChildProcess[] = [];
  return {
    fake,
    db,
    env,
    processes,
    async close() {
      for (const p of processes) await stopProcess(p);
      await db.drop();
      await fake.stop();
    },
  };
}

export interface Started {
  child: ChildProcess;
  pid: number;
  url?: string;
}

/** `node bin/plangate.js <role>` with its own data dir; a server is awaited until /readyz answers. */
export async function startProcess(d: Deployment, role: "start" | "worker", extra: Record<string, string> = {}): Promise<Started> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `plangate-bench-${role}-`));
  chmodSync(dataDir, 0o755);
  const port = role === "start" ? await freePort() : undefined;
  const child = spawn(process.execPath, ["bin/plangate.js", role], {
    env: { ...process.env, ...d.env, PLANGATE_DATA_DIR: dataDir, ...(port ? { PORT: String(port), HOST: "127.0.0.1" } : {}), ...extra },
    stdio: ["ignore", "inherit", "inherit"],
  });
  d.processes.push(child);
  const started: Started = { child, pid: child.pid!, url: port ? `http://127.0.0.1:${port}` : undefined };
  if (started.url) {
    for (let i = 0; ; i++) {
      const ok = await fetch(`${started.url}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300 || child.exitCode !== null) throw new Error(`plangate ${role} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return started;
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** VmRSS and VmHWM (peak) of one process, in MB: its own memory, never its children's. */
export function memoryOf(pid: number): { rssMB: number; hwmMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { rssMB: kb("VmRSS") / 1024, hwmMB: kb("VmHWM") / 1024 };
}

/** Every descendant of pid (children, their children…) with its command name and RSS in MB. */
export function descendantsOf(pid: number): { pid: number; comm: string; rssMB: number }[] {
  const parent = new Map<number, number>();
  const info = new Map<number, { comm: string; rssMB: number }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      parent.set(Number(entry), Number(fields[1]));
      info.set(Number(entry), { comm, rssMB: (Number(fields[21]) * 4096) / 1024 ** 2 });
    } catch {
      // gone meanwhile
    }
  }
  const found: { pid: number; comm: string; rssMB: number }[] = [];
  for (const [child, ppid] of parent) {
    let p: number | undefined = ppid;
    while (p && p !== pid) p = parent.get(p);
    if (p === pid) found.push({ pid: child, ...info.get(child)! });
  }
  return found;
}

/** Samples a process's RSS every `everyMs` until stopped: the highest and the last sample. */
export function sampler(pid: number, everyMs = 100, children = false) {
  let maxMB = 0;
  let lastMB = 0;
  let maxChildMB = 0;
  let maxChildComm = "";
  const samples: number[] = [];
  const tick = () => {
    try {
      lastMB = memoryOf(pid).rssMB;
      maxMB = Math.max(maxMB, lastMB);
      samples.push(lastMB);
      if (children) {
        for (const c of descendantsOf(pid)) {
          if (c.rssMB > maxChildMB) [maxChildMB, maxChildComm] = [c.rssMB, c.comm];
        }
      }
    } catch {
      // the process ended
    }
  };
  tick();
  const timer = setInterval(tick, everyMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { maxMB, lastMB, samples: samples.length, maxChildMB, maxChildComm };
    },
  };
}

export const mb = (n: number) => Math.round(n);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
