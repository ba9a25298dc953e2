import { readFileSync } from "node:fs";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { sandboxTest, workspaces } from "../support/sandbox.js";

/**
 * A PR's program looks around the sandbox's /etc for the host's users,
 * password hashes and service configuration: it finds only what plangate
 * generated for the run, and the CA certificates.
 */
const GENERATED = ["group", "hosts", "nsswitch.conf", "passwd", "resolv.conf"];
const CERTIFICATES = ["ssl", "ca-certificates", "pki"];

const workspace = workspaces("plangate-etc-test-");

const hostUsers = () => readFileSync("/etc/passwd", "utf8").split("\n").filter(Boolean).map((line) => line.split(":")[0]!);

describe("the sandbox's /etc", () => {
  sandboxTest("holds only generated files and the CA certificates: no host user, no shadow", async () => {
    const extraHostUsers = hostUsers().filter((name) => !["root", "nobody"].includes(name));
    expect(extraHostUsers.length).toBeGreaterThan(0); // the host has users a PR must not learn about
    const result = await new Sandbox("bwrap").run({
      command: ["/bin/sh", "-c", "echo ETC:; ls -A /etc; echo PASSWD:; cat /etc/passwd; echo GROUP:; cat /etc/group; echo CERTS:; ls /etc/ssl/certs | head -3; cat /etc/shadow 2>&1 || echo no-shadow; id"],
      workDir: workspace(),
      network: false,
      env: {},
      timeoutMs: 20_000,
    });
    expect(result.exitCode).toBe(0);
    const section = (name: string, next: string) => result.output.split(`${name}:\n`)[1]!.split(`${next}:\n`)[0]!.split("\n").filter(Boolean);
    const listed = section("ETC", "PASSWD");
    for (const name of GENERATED) expect(listed).toContain(name);
    expect(listed.filter((name) => !GENERATED.includes(name) && !CERTIFICATES.includes(name))).toEqual([]);
    const users = section("PASSWD", "GROUP").map((line) => line.split(":")[0]);
    for (const name of extraHostUsers) expect(users).not.toContain(name);
    expect(users).toContain("nobody");
    expect(section("GROUP", "CERTS").length).toBeLessThanOrEqual(3);
    expect(section("CERTS", "no-shadow").length).toBeGreaterThan(0); // TLS to registries and backends still works
    expect(result.output).toContain("no-shadow");
  });

  sandboxTest("names the caller adds resolve inside the sandbox through its /etc/hosts", async () => {
    const result = await new Sandbox("bwrap").run({
      command: ["/bin/sh", "-c", "cat /etc/hosts; getent hosts registry.example.test"],
      workDir: workspace(),
      network: false,
      env: {},
      hosts: [{ name: "registry.example.test", address: "10.11.12.13" }],
      timeoutMs: 20_000,
    });
    expect(result.exitCode).toBe(0);
    expect(result.output).toMatch(/^10\.11\.12\.13\s+registry\.example\.test$/m);
    expect(result.output).toMatch(/^127\.0\.0\.1\s+localhost$/m);
  });
});
