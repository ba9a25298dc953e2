import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { pino } from "pino";
import { databaseExposureWarnings, egressFilterFor } from "../../src/sandbox/egress/egress-from-settings.js";
import { systemLookup } from "../../src/sandbox/egress/egress-policy.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { failureMessage, terraformPlan } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { readSettings } from "../../src/settings/settings.js";
import { engineTest, startHarness } from "../support/app-harness.js";
import { workspaces } from "../support/sandbox.js";

/**
 * plangate's own database next to a PR's state backend (issue 21, row 18).
 * Refused by default; an ALLOW entry that opens it is the operator's choice
 * (terraform state in the same server), but the start log must say what it
 * exposes: every PR's backend "pg" could then write into plangate's tables.
 */
const workspace = workspaces("plangate-egress-db-");

/** This host's address on its network (not loopback). */
function hostAddress(): string {
  const found = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === "IPv4" && !i.internal);
  if (!found) throw new Error("this machine has no non-loopback IPv4 address");
  return found.address;
}

const dns = async (host: string) => ({ "db.internal": ["127.0.0.1"], "state.example": ["203.0.113.5"], "pg.corp": ["10.1.2.3"] })[host] ?? systemLookup(host);
const warnedEntries = async (allow: string, databaseUrl: string) =>
  (await databaseExposureWarnings(readSettings({ PLANGATE_SANDBOX_EGRESS_ALLOW: allow }), databaseUrl, dns)).map((w) => w.split(" ")[2]);

describe("plangate's own database and the egress allowlist", () => {
  test("every ALLOW entry that reaches the database is warned about; others are not", async () => {
    const local = "postgres://plangate:secret@127.0.0.1:5432/plangate";
    const reaching = ["127.0.0.1:5432", "localhost:5432", "db.internal:5432", "127.0.0.0/8", "0.0.0.0/0", "[::1]:5432", `${hostAddress()}:5432`, `${hostAddress()}/32`];
    const elsewhere = ["127.0.0.1:5433", "10.0.0.0/8", "state.example:5432", "[2001:db8::/32]:5432"];
    expect(await warnedEntries([...reaching, ...elsewhere].join(","), local)).toEqual(reaching);

    // A database on another machine: only entries that reach that machine, on its port.
    expect(await warnedEntries("10.0.0.0/8,10.1.2.3:5432,pg.corp:6432,127.0.0.1:6432", "postgres://u@pg.corp:6432/x")).toEqual(["10.0.0.0/8", "pg.corp:6432"]);
    // A Unix socket: not reachable from the sandbox's network at all.
    expect(await warnedEntries("127.0.0.0/8", "postgres://u@%2Fvar%2Frun%2Fpostgresql/x")).toEqual([]);

    const [text] = await databaseExposureWarnings(readSettings({ PLANGATE_SANDBOX_EGRESS_ALLOW: "127.0.0.1:5432" }), local);
    expect(text).toBe(
      "PLANGATE_SANDBOX_EGRESS_ALLOW entry 127.0.0.1:5432 opens plangate's own database (127.0.0.1:5432) to every sandboxed plan and apply: a pull request's state backend or provider can read and write plangate's tables; keep terraform state on another database server or port",
    );
  });

  test("the start log warns when an ALLOW entry opens plangate's own database", async () => {
    const lines: { level: number; msg: string; setting?: string }[] = [];
    const log = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // The harness allows its database's server for the tests' pg state backend: the very server plangate's own database is on.
    const h = await startHarness({}, { log });
    try {
      const database = new URL(h.db.url);
      const where = `${database.hostname}:${database.port || 5432}`;
      expect(lines).toContainEqual(
        expect.objectContaining({ level: 40, setting: "PLANGATE_SANDBOX_EGRESS_ALLOW", msg: expect.stringMatching(new RegExp(`^PLANGATE_SANDBOX_EGRESS_ALLOW entry ${where.replace(/\./g, "\\.")} opens plangate's own database \\(${where.replace(/\./g, "\\.")}\\)`)) }),
      );
    } finally {
      await h.close();
    }
  });

  engineTest("by default a PR's pg state backend cannot reach plangate's database: the plan fails naming the address, nothing is written", async () => {
    const databaseUrl = process.env.DATABASE_URL!;
    const sandbox = new Sandbox("bwrap", { egress: egressFilterFor(readSettings({}), databaseUrl) });
    const schema = `egress_${randomBytes(4).toString("hex")}`;
    const url = new URL(databaseUrl);
    url.searchParams.set("sslmode", "disable");
    const root = workspace();
    const checkoutDir = path.join(root, "checkout");
    mkdirSync(path.join(checkoutDir, "stack"), { recursive: true });
    mkdirSync(path.join(root, "out"));
    writeFileSync(path.join(checkoutDir, "stack/main.tf"), `terraform {\n  backend "pg" {\n    conn_str    = "${url}"\n    schema_name = "${schema}"\n  }\n}\nresource "terraform_data" "x" {}\n`);
    const { home } = await new TerraformHomes(path.join(root, "tf")).acquire();
    try {
      const outcome = await terraformPlan({ sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir, projectDir: "stack", workspace: "default", env: {}, timeoutMs: 60_000, outDir: path.join(root, "out") });
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      expect(failureMessage(outcome)).toContain(`egress refused: ${url.hostname}:${url.port || 5432} (`);
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      const { rows } = await client.query("select count(*)::int as n from information_schema.schemata where schema_name = $1", [schema]);
      await client.end();
      expect(rows[0].n).toBe(0);
    } finally {
      await sandbox.close();
    }
  });
});
