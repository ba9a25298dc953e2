import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { cdktfSynth } from "../../src/engines/cdktf.js";
import { EgressFilter, type EgressFilterOptions } from "../../src/sandbox/egress/egress-filter.js";
import { egressFilterFor } from "../../src/sandbox/egress/egress-from-settings.js";
import { EgressPolicy, systemLookup } from "../../src/sandbox/egress/egress-policy.js";
import { bwrapWorks, Sandbox } from "../../src/sandbox/sandbox.js";
import { failureMessage, terraformPlan } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { parseEgressRules, type EgressRule } from "../../src/settings/egress-rules.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { readSettings } from "../../src/settings/settings.js";
import { databaseHostPort, engineTest, toolTest } from "../support/app-harness.js";
import { RecordingListener } from "../support/listener.js";

/**
 * The hostile PR author reaching for what sits next to plangate: its
 * database, its webhook port, the cloud's credential endpoint, anything on
 * the host's loopback. Every target is a listener this test owns, and each
 * attack asserts that the listener saw nothing and that the failure names the
 * address and PLANGATE_SANDBOX_EGRESS_ALLOW. With the host's network shared
 * into the sandbox (bubblewrap --share-net) every one of them connects.
 */
const sandboxTest: typeof test = ((name: string, fn: jest.ProvidesCallback, timeout?: number) => toolTest(bwrapWorks(), "bubblewrap", name, fn, timeout)) as typeof test;

const sandboxes: Sandbox[] = [];
const listeners: RecordingListener[] = [];
afterAll(async () => {
  await Promise.all(sandboxes.map((s) => s.close()));
  for (const l of listeners) l.close();
});

function rules(text: string): EgressRule[] {
  const parsed = parseEgressRules(text);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

function sandboxWith(options: Partial<EgressFilterOptions> | EgressFilter = {}): Sandbox {
  const egress = options instanceof EgressFilter ? options : new EgressFilter({ allow: [], deny: [], ...options });
  const sandbox = new Sandbox("bwrap", { egress });
  sandboxes.push(sandbox);
  return sandbox;
}

/** A TCP listener on every address of the host, answering LISTENER-REACHED; `settled()` lists who connected. */
async function listener(): Promise<RecordingListener> {
  const server = await RecordingListener.start("::", "LISTENER-REACHED\n");
  listeners.push(server);
  return server;
}

/** This host's address on its network (not loopback): where services listening on all interfaces answer. */
function hostAddress(): string {
  const found = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === "IPv4" && !i.internal);
  if (!found) throw new Error("this machine has no non-loopback IPv4 address to attack");
  return found.address;
}

function workspace(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-egress-"));
  chmodSync(dir, 0o755);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

async function plan(sandbox: Sandbox, mainTf: string) {
  const root = workspace({ "checkout/stack/main.tf": mainTf });
  mkdirSync(path.join(root, "out"));
  const { home } = await new TerraformHomes(path.join(root, "tf")).acquire();
  return terraformPlan({ sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir: path.join(root, "checkout"), projectDir: "stack", workspace: "default", env: {}, timeoutMs: 60_000, outDir: path.join(root, "out") });
}

const httpBackend = (address: string) => `terraform {\n  backend "http" {\n    address   = "${address}"\n    retry_max = 0\n  }\n}\nresource "terraform_data" "x" {}\n`;

/** A program in the sandbox that asks the proxy its environment names for a tunnel to `target`, printing the answer. */
const connectViaProxy = (target: string) => [
  "/usr/bin/node",
  "-e",
  `const u = new URL(process.env.HTTPS_PROXY); const s = require("net").connect(+u.port, u.hostname, () => s.write("CONNECT ${target} HTTP/1.1\\r\\nHost: ${target}\\r\\n\\r\\n")); s.on("data", (d) => process.stdout.write(d)); s.on("error", (e) => console.log("ERROR", e.message));`,
];

const runIn = (sandbox: Sandbox, command: string[], network = true) => sandbox.run({ command, workDir: workspace(), network, env: {}, timeoutMs: 30_000 });

describe("sandbox egress filter", () => {
  test("address spellings of loopback, metadata and this host are refused after resolution; ALLOW opens, also against DENY", async () => {
    const policy = new EgressPolicy({ allow: rules("10.9.9.9:443,fd00:1::/32"), deny: rules("10.0.0.0/8,[fd00::/16]:443,evil.example:443"), lookup: async (h) => (h === "evil.example" ? ["203.0.113.7"] : systemLookup(h)) });
    const reason = async (host: string, port: number) => {
      const decision = await policy.decide(host, port);
      return decision.verdict === "refused" ? decision.refusal.reason : decision.verdict;
    };
    for (const host of ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::1]", "::ffff:127.0.0.1", "::ffff:7f00:1", "localhost"]) expect([host, await reason(host, 80)]).toEqual([host, "loopback"]);
    for (const host of ["169.254.169.254", "::ffff:169.254.169.254", "fe80::1"]) expect(await reason(host, 80)).toMatch(/^link-local/);
    for (const host of ["0.0.0.0", "::"]) expect(await reason(host, 80)).toMatch(/^unspecified/);
    expect(await reason(hostAddress(), 22)).toBe("an address of this host");
    expect(await reason("10.1.2.3", 80)).toBe("PLANGATE_SANDBOX_EGRESS_DENY entry 10.0.0.0/8");
    expect(await reason("203.0.113.7", 443)).toBe("PLANGATE_SANDBOX_EGRESS_DENY entry evil.example:443");
    expect(await reason("10.9.9.9", 443)).toBe("open");
    expect(await reason("fd00:1::5", 443)).toBe("open");
    expect(await reason("fd00:2::5", 443)).toBe("PLANGATE_SANDBOX_EGRESS_DENY entry [fd00::/16]:443");
  });

  engineTest("a state backend on the host's loopback gets no connection, and the PR author learns the address and the setting", async () => {
    const target = await listener();
    const outcome = await plan(sandboxWith(), httpBackend(`http://127.0.0.1:${target.port}/state`));
    expect(await target.settled()).toEqual([]);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(failureMessage(outcome)).toContain(`egress refused: 127.0.0.1:${target.port} (loopback`);
    expect(failureMessage(outcome)).toContain(`PLANGATE_SANDBOX_EGRESS_ALLOW=127.0.0.1:${target.port} would open it`);
  });

  engineTest("a name that resolves to loopback is refused after the host resolves it (DNS cannot smuggle loopback in)", async () => {
    const target = await listener();
    // `localhost.` is not `localhost` to Go's proxy rules, so it goes to the proxy; attacker.test is the PR author's own DNS.
    const sandbox = sandboxWith({ lookup: async (host) => (host === "state.attacker.test" ? ["127.0.0.1"] : systemLookup(host)) });
    for (const host of ["localhost.", "state.attacker.test"]) {
      const outcome = await plan(sandbox, httpBackend(`http://${host}:${target.port}/state`));
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      const name = host.replace(/\.$/, "");
      expect(outcome.problems.join("\n")).toMatch(new RegExp(`egress refused: ${name.replace(/\./g, "\\.")}:${target.port} \\(resolves to (127\\.0\\.0\\.1|::1): loopback\\); PLANGATE_SANDBOX_EGRESS_ALLOW=${name.replace(/\./g, "\\.")}:${target.port} would open it`));
    }
    expect(await target.settled()).toEqual([]);
  });

  engineTest("the cloud metadata address is refused by the proxy", async () => {
    const outcome = await plan(sandboxWith(), httpBackend("http://169.254.169.254/latest/meta-data/iam/security-credentials/"));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(failureMessage(outcome)).toContain("egress refused: 169.254.169.254:80 (link-local, where clouds hand out credentials); PLANGATE_SANDBOX_EGRESS_ALLOW=169.254.169.254:80 would open it");
  });

  engineTest("the other clouds' metadata services are refused by the proxy too: AWS over IPv6, Alibaba, Oracle", async () => {
    const sandbox = sandboxWith();
    const targets: [url: string, asked: string, reason: string][] = [
      ["http://[fd00:ec2::254]/latest/meta-data/iam/security-credentials/", "[fd00:ec2::254]:80", "AWS's metadata service over IPv6"],
      ["http://100.100.100.200/latest/meta-data/ram/security-credentials/", "100.100.100.200:80", "Alibaba Cloud's metadata service"],
      ["http://192.0.0.192/latest/attributes/", "192.0.0.192:80", "Oracle Cloud's metadata service"],
    ];
    for (const [url, asked, reason] of targets) {
      const outcome = await plan(sandbox, httpBackend(url));
      expect(outcome.ok).toBe(false);
      if (outcome.ok) return;
      expect(failureMessage(outcome)).toContain(`egress refused: ${asked} (${reason}, where it hands out credentials); PLANGATE_SANDBOX_EGRESS_ALLOW=${asked} would open it`);
    }
  });

  sandboxTest("a raw connection to the host's network address finds no network, and the proxy refuses the host too", async () => {
    const target = await listener();
    const address = hostAddress();
    const sandbox = sandboxWith();
    const raw = await runIn(sandbox, ["/bin/bash", "-c", `exec 3<>/dev/tcp/${address}/${target.port} && cat <&3`]);
    const proxied = await runIn(sandbox, connectViaProxy(`${address}:${target.port}`));
    expect(await target.settled()).toEqual([]);
    expect(raw.exitCode).not.toBe(0);
    expect(raw.output).toContain("Network is unreachable");
    expect(proxied.output).toContain("403 Forbidden");
    expect(proxied.problems).toContain(`egress refused: ${address}:${target.port} (an address of this host); PLANGATE_SANDBOX_EGRESS_ALLOW=${address}:${target.port} would open it`);
  });

  sandboxTest("a worker's namespace started ahead of its first run filters that run as one started for it would", async () => {
    const target = await listener();
    const address = hostAddress();
    const sandbox = sandboxWith();
    sandbox.warm();
    const [raw, proxied] = await Promise.all([
      runIn(sandbox, ["/bin/bash", "-c", `exec 3<>/dev/tcp/${address}/${target.port} && cat <&3`]),
      runIn(sandbox, connectViaProxy(`${address}:${target.port}`)),
    ]);
    expect(await target.settled()).toEqual([]);
    expect(raw.output).toContain("Network is unreachable");
    expect(proxied.output).toContain("403 Forbidden");
    expect(proxied.problems).toContain(`egress refused: ${address}:${target.port} (an address of this host); PLANGATE_SANDBOX_EGRESS_ALLOW=${address}:${target.port} would open it`);
  });

  engineTest("PLANGATE_SANDBOX_EGRESS_ALLOW opens destinations: a TCP service by host name, and the pg state backend", async () => {
    const target = await listener();
    const database = databaseHostPort(process.env.DATABASE_URL!);
    const sandbox = sandboxWith({ allow: rules(`echo.test:${target.port},${database}`), lookup: async (host) => (host === "echo.test" ? ["127.0.0.1"] : []) });
    const echo = await runIn(sandbox, ["/bin/bash", "-c", `exec 3<>/dev/tcp/echo.test/${target.port} && cat <&3`]);
    expect(echo.output).toContain("LISTENER-REACHED");
    expect(echo.problems).toEqual([]);
    expect(await target.settled()).toHaveLength(1);

    const schema = `egress_${randomBytes(4).toString("hex")}`;
    const url = new URL(process.env.DATABASE_URL!);
    url.searchParams.set("sslmode", "disable");
    const outcome = await plan(sandbox, `terraform {\n  backend "pg" {\n    conn_str    = "${url}"\n    schema_name = "${schema}"\n  }\n}\nresource "terraform_data" "x" {}\n`);
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    const { rows } = await client.query("select count(*)::int as n from information_schema.tables where table_schema = $1 and table_name = 'states'", [schema]);
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
    expect(outcome.ok ? "planned" : failureMessage(outcome) + outcome.output).toBe("planned");
    expect(rows[0].n).toBe(1);
  });

  sandboxTest("plangate's database and its own port are refused unless allowed", async () => {
    const database = await listener();
    const webhook = await listener();
    const address = hostAddress();
    const databaseUrl = `postgres://plangate:secret@127.0.0.1:${database.port}/plangate`;
    const settings = readSettings({ PORT: String(webhook.port) });
    const refused = sandboxWith(egressFilterFor(settings, databaseUrl));
    const toDatabase = await runIn(refused, connectViaProxy(`127.0.0.1:${database.port}`));
    const toWebhook = await runIn(refused, connectViaProxy(`${address}:${webhook.port}`));
    expect(await database.settled()).toEqual([]);
    expect(await webhook.settled()).toEqual([]);
    expect(toDatabase.problems).toEqual([`egress refused: 127.0.0.1:${database.port} (plangate's database); PLANGATE_SANDBOX_EGRESS_ALLOW=127.0.0.1:${database.port} would open it`]);
    expect(toWebhook.problems).toEqual([`egress refused: ${address}:${webhook.port} (plangate's own port); PLANGATE_SANDBOX_EGRESS_ALLOW=${address}:${webhook.port} would open it`]);

    const opened = readSettings({ PORT: String(webhook.port), PLANGATE_SANDBOX_EGRESS_ALLOW: `127.0.0.1:${database.port},${address}:${webhook.port}` });
    const allowed = sandboxWith(egressFilterFor(opened, databaseUrl));
    // A loopback entry is listened on inside the sandbox (direct clients work); other addresses go through the proxy.
    const direct = await runIn(allowed, ["/bin/bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${database.port} && cat <&3`]);
    const proxied = await runIn(allowed, connectViaProxy(`${address}:${webhook.port}`));
    expect(direct.output).toContain("LISTENER-REACHED");
    expect(proxied.output).toContain("200 Connection Established");
    expect(proxied.output).toContain("LISTENER-REACHED");
    expect(await database.settled()).toHaveLength(1);
    expect(await webhook.settled()).toHaveLength(1);
  });

  sandboxTest("cdktf synth has no network at all: a program reaching for the host sees nothing", async () => {
    const target = await listener();
    const address = hostAddress();
    const app = `node -e "require('net').connect(${target.port}, '${address}').on('connect', () => console.log('CONNECTED')).on('error', (e) => console.log('NO-NETWORK', e.code))"`;
    const checkoutDir = workspace({ "app/cdktf.json": JSON.stringify({ app, language: "typescript" }) });
    const outcome = await cdktfSynth({ sandbox: sandboxWith(), checkoutDir, projectDir: "app", env: {}, timeoutMs: 30_000, depsCacheDir: workspace() });
    expect(await target.settled()).toEqual([]);
    expect(outcome.ok).toBe(false);
    expect(outcome.ok ? "" : outcome.output).toContain("NO-NETWORK ENETUNREACH");
  });
});
