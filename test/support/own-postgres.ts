import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../src/db/embedded.js";

const BIN = process.env.PLANGATE_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/** The OS user PostgreSQL runs as: initdb refuses root, so as root it is `postgres`. */
const asPostgres = (program: string, args: string[]) =>
  process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", path.join(BIN, program), ...args]] as const : [path.join(BIN, program), args] as const;

const run = (program: string, args: string[]) => {
  const [cmd, argv] = asPostgres(program, args);
  return execFileSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
};

/**
 * A PostgreSQL server a test owns, in a temp directory on a free port, that
 * the test can stop and start again (what a database restart looks like to plangate).
 */
export class OwnPostgres {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), "plangate-own-pg-"));
  readonly data = path.join(this.dir, "data");
  port = 0;

  /** initdb (superuser `root`, trust on 127.0.0.1) and start. */
  async init(): Promise<void> {
    chmodSync(this.dir, 0o755);
    if (process.getuid?.() === 0) {
      const { uid, gid } = { uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })), gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" })) };
      chownSync(this.dir, uid, gid);
    }
    run("initdb", ["-D", this.data, "-U", "root", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    this.port = await freePort();
    this.start();
  }

  get url(): string {
    return `postgres://root@127.0.0.1:${this.port}/postgres`;
  }

  /** A database URL on this server. */
  urlOf(database: string): string {
    return `postgres://root@127.0.0.1:${this.port}/${database}`;
  }

  /** Starts the server and waits until it accepts connections. */
  start(): void {
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=100`;
    run("pg_ctl", ["-D", this.data, "-l", path.join(this.dir, "log"), "-o", options, "-w", "-t", "60", "start"]);
  }

  /** Stops it the way an operator's restart does: `fast` rolls back open transactions and ends every connection. */
  stop(): void {
    run("pg_ctl", ["-D", this.data, "-m", "fast", "-w", "-t", "60", "stop"]);
  }

  destroy(): void {
    try {
      this.stop();
    } catch {
      // not running
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
