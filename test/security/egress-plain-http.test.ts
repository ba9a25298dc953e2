import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { EgressFilter } from "../../src/sandbox/egress/egress-filter.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { failureMessage, terraformPlan } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { parseEgressRules } from "../../src/settings/egress-rules.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { engineTest } from "../support/app-harness.js";
import { sandboxTest, workspaces } from "../support/sandbox.js";

/**
 * Plain http:// through the sandbox's proxy (issue 21, row 1). The proxy must
 * send the request to exactly the address its policy checked, as it does for
 * CONNECT. Node's http client ignores `createConnection` whenever an agent is
 * in play (`agent: false` makes one), and then dials the request's own host,
 * unset here: the host's port 80. So the attack needs no refused address at
 * all: any allowed destination, asked for in plain HTTP, lands on whatever
 * listens on the host's loopback port 80.
 */
const workspace = workspaces("plangate-plain-http-");
const servers: net.Server[] = [];
const sandboxes: Sandbox[] = [];
afterAll(async () => {
  await Promise.all(sandboxes.map((s) => s.close()));
  for (const s of servers) s.close();
});

/** This host's address on its network (not loopback): the allowed mirror listens there. */
function hostAddress(): string {
  const found = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === "IPv4" && !i.internal);
  if (!found) throw new Error("this machine has no non-loopback IPv4 address");
  return found.address;
}

/** A state as terraform's http backend serves it, with one output. */
const stateWith = (greeting: string) =>
  JSON.stringify({ version: 4, terraform_version: "1.11.4", serial: 1, lineage: "plangate-test", outputs: { greeting: { value: greeting, type: "string" } }, resources: [] });

interface Seen {
  method: string;
  url: string;
  host?: string;
  body: string;
}

/** An HTTP server answering every request with `body`, recording each request. */
async function httpServer(addresses: string[], port: number, body: string): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  for (const address of addresses) {
    const server = http.createServer((req, res) => {
      let text = "";
      req.on("data", (d) => (text += d));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host, body: text });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(body);
      });
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, resolve);
    });
    port = (server.address() as net.AddressInfo).port;
  }
  return { port, seen };
}

/** What listens on the host's loopback port 80 (tests run as root): answers anything, and must hear nothing. */
let loopback: { seen: Seen[] };
beforeAll(async () => {
  loopback = await httpServer(["127.0.0.1", "::1"], 80, stateWith("HOST-LOOPBACK-80"));
});

function sandboxAllowing(allow: string): Sandbox {
  const rules = parseEgressRules(allow);
  if (typeof rules === "string") throw new Error(rules);
  const sandbox = new Sandbox("bwrap", { egress: new EgressFilter({ allow: rules, deny: [] }) });
  sandboxes.push(sandbox);
  return sandbox;
}

describe("plain http:// through the egress proxy", () => {
  engineTest("terraform reads remote state from an allowed plain-HTTP server: the answer is the server's, and the host's loopback port 80 hears nothing", async () => {
    const address = hostAddress();
    const mirror = await httpServer([address], 0, stateWith("FROM-THE-ALLOWED-MIRROR"));
    // An address that is not loopback exists only behind the proxy: terraform's http client must send it there.
    const sandbox = sandboxAllowing(`${address}:${mirror.port}`);
    const root = workspace();
    const checkoutDir = path.join(root, "checkout");
    mkdirSync(path.join(checkoutDir, "stack"), { recursive: true });
    mkdirSync(path.join(root, "out"));
    writeFileSync(
      path.join(checkoutDir, "stack/main.tf"),
      `data "terraform_remote_state" "mirror" {\n  backend = "http"\n  config = {\n    address = "http://${address}:${mirror.port}/state?name=x"\n  }\n}\noutput "greeting" {\n  value = data.terraform_remote_state.mirror.outputs.greeting\n}\n`,
    );
    const { home } = await new TerraformHomes(path.join(root, "tf")).acquire();
    const outcome = await terraformPlan({ sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir, projectDir: "stack", workspace: "default", env: {}, timeoutMs: 60_000, outDir: path.join(root, "out") });

    // Any request that went to the host's port 80 was answered before the plan ended.
    expect(loopback.seen).toEqual([]);
    expect(outcome.ok ? "planned" : failureMessage(outcome) + outcome.output).toBe("planned");
    if (!outcome.ok) return;
    expect(outcome.output).not.toContain("HOST-LOOPBACK-80");
    expect(outcome.planJson).toMatchObject({ planned_values: { outputs: { greeting: { value: "FROM-THE-ALLOWED-MIRROR" } } } });
    expect(mirror.seen).toEqual([expect.objectContaining({ method: "GET", url: "/state?name=x", host: `${address}:${mirror.port}` })]);
  });

  sandboxTest("a plain-HTTP POST with a body reaches the allowed server as one origin-form request; its answer comes back, the host's port 80 hears nothing", async () => {
    const address = hostAddress();
    const mirror = await httpServer([address], 0, "ANSWER-FROM-THE-ALLOWED-SERVER");
    const sandbox = sandboxAllowing(`${address}:${mirror.port}`);
    const target = `http://${address}:${mirror.port}/upload?x=1`;
    // The request a proxy-aware client sends: absolute-form, to the proxy its environment names.
    const client = `const u = new URL(process.env.HTTP_PROXY); const s = require("net").connect(+u.port, u.hostname, () => s.write("POST ${target} HTTP/1.1\\r\\nHost: ${address}:${mirror.port}\\r\\nContent-Length: 5\\r\\nConnection: close\\r\\n\\r\\nhello")); s.on("data", (d) => process.stdout.write(d)); s.on("error", (e) => console.log("ERROR", e.message));`;
    const result = await sandbox.run({ command: ["/usr/bin/node", "-e", client], workDir: workspace(), network: true, env: {}, timeoutMs: 30_000 });

    expect(loopback.seen).toEqual([]);
    expect(result.output).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(result.output).toContain("ANSWER-FROM-THE-ALLOWED-SERVER");
    expect(result.output).not.toContain("HOST-LOOPBACK-80");
    expect(result.problems).toEqual([]);
    expect(mirror.seen).toEqual([{ method: "POST", url: "/upload?x=1", host: `${address}:${mirror.port}`, body: "hello" }]);
  });
});
