import { existsSync } from "node:fs";
import { EgressFilter, socketFolderProblem } from "../../src/sandbox/egress/egress-filter.js";
import { EgressPolicy, refusalProblem, type Lookup } from "../../src/sandbox/egress/egress-policy.js";
import { parseEgressRules, type EgressRule } from "../../src/settings/egress-rules.js";

function rules(text: string): EgressRule[] {
  const parsed = parseEgressRules(text);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

/** A PR author's own DNS: names that point at metadata services. */
const attackerDns: Lookup = async (host) =>
  ({ "imds.attacker.test": ["fd00:ec2::254"], "aliyun.attacker.test": ["100.100.100.200"], "oci.attacker.test": ["192.0.0.192"], "gcp.attacker.test": ["169.254.169.254"] })[host] ?? [];

/** What the policy says about host:port: "open", or the text a PR author reads. */
async function verdict(policy: EgressPolicy, host: string, port = 80): Promise<string> {
  const decision = await policy.decide(host, port);
  return decision.verdict === "refused" ? refusalProblem(decision.refusal) : decision.verdict;
}

describe("cloud metadata addresses (issue 21, row 12)", () => {
  const byDefault = new EgressPolicy({ allow: [], deny: [], lookup: attackerDns });

  test.each([
    ["169.254.169.254", "link-local, where clouds hand out credentials"],
    ["169.254.170.2", "link-local, where clouds hand out credentials"],
    ["fd00:ec2::254", "AWS's metadata service over IPv6, where it hands out credentials"],
    ["100.100.100.200", "Alibaba Cloud's metadata service, where it hands out credentials"],
    ["192.0.0.192", "Oracle Cloud's metadata service, where it hands out credentials"],
  ])("%s is refused by default, and the refusal names the address to allow", async (address, reason) => {
    const asked = address.includes(":") ? `[${address}]:80` : `${address}:80`;
    expect(await verdict(byDefault, address)).toBe(`egress refused: ${asked} (${reason}); PLANGATE_SANDBOX_EGRESS_ALLOW=${asked} would open it`);
  });

  test("other spellings of the same addresses are refused too: IPv6 forms, IPv4-mapped, NAT64, and names that resolve to them", async () => {
    for (const spelling of ["FD00:0EC2:0000::0254", "fd00:ec2:0:0:0:0:0:254", "[fd00:ec2::254]", "::ffff:100.100.100.200", "::ffff:6464:64c8", "64:ff9b::100.100.100.200", "64:ff9b::c000:c0", "::ffff:169.254.169.254"]) {
      expect([spelling, await verdict(byDefault, spelling)]).toEqual([spelling, expect.stringMatching(/^egress refused: .*(metadata service|link-local)/)]);
    }
    expect(await verdict(byDefault, "64:ff9b::a9fe:a9fe")).toBe(
      "egress refused: [64:ff9b::a9fe:a9fe]:80 (link-local, where clouds hand out credentials); PLANGATE_SANDBOX_EGRESS_ALLOW=169.254.169.254:80 would open it",
    );
    expect(await verdict(byDefault, "aliyun.attacker.test")).toBe(
      "egress refused: aliyun.attacker.test:80 (resolves to 100.100.100.200: Alibaba Cloud's metadata service, where it hands out credentials); PLANGATE_SANDBOX_EGRESS_ALLOW=100.100.100.200:80 would open it",
    );
    expect(await verdict(byDefault, "imds.attacker.test")).toBe(
      "egress refused: imds.attacker.test:80 (resolves to fd00:ec2::254: AWS's metadata service over IPv6, where it hands out credentials); PLANGATE_SANDBOX_EGRESS_ALLOW=[fd00:ec2::254]:80 would open it",
    );
  });

  test("an ALLOW entry that merely covers a metadata address does not open it: all addresses, a wider range, a host name", async () => {
    const wide = new EgressPolicy({
      allow: rules("0.0.0.0/0,::/0,100.64.0.0/10,192.0.0.0/24:80,[fd00::/8]:80,aliyun.attacker.test:80,oci.attacker.test:80,gcp.attacker.test:80"),
      deny: [],
      lookup: attackerDns,
    });
    for (const host of ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "aliyun.attacker.test", "oci.attacker.test", "gcp.attacker.test"]) {
      expect([host, await verdict(wide, host)]).toEqual([host, expect.stringMatching(/^egress refused: /)]);
    }
    // The wide entries still open everything else they cover.
    expect(await verdict(wide, "100.64.1.1", 443)).toBe("open");
    expect(await verdict(wide, "fd00:1::1")).toBe("open");
  });

  test("an ALLOW entry that names a metadata address opens it, on its port only", async () => {
    const named = new EgressPolicy({ allow: rules("169.254.169.254:80,[fd00:ec2::254]:80,100.100.100.200/32,192.0.0.192:80"), deny: [], lookup: attackerDns });
    for (const host of ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "aliyun.attacker.test"]) expect([host, await verdict(named, host)]).toEqual([host, "open"]);
    expect(await verdict(named, "169.254.169.254", 8080)).toMatch(/^egress refused: 169\.254\.169\.254:8080 \(link-local/);
    expect(await verdict(named, "169.254.170.2")).toMatch(/^egress refused: 169\.254\.170\.2:80 \(link-local/);
    const wholeRange = new EgressPolicy({ allow: rules("169.254.0.0/16"), deny: [] });
    expect(await verdict(wholeRange, "169.254.170.2", 443)).toBe("open");
  });
});

describe("where the egress filter keeps its sockets", () => {
  test("a temp folder too long for a Unix socket's path is refused in words that say what to set, before anything is made", async () => {
    expect(socketFolderProblem("/tmp")).toBeUndefined();
    const long = `/tmp/${"x".repeat(70)}`;
    expect(socketFolderProblem(long)).toMatch(/^the egress filter's sockets would be at \/tmp\/x+\/plangate-egress-XXXXXX\/run-XXXXXX\/egress\.sock \(\d+ bytes\), past the 107 bytes a Unix socket's path may have: set TMPDIR to a shorter folder$/);
    const filter = new EgressFilter({ allow: [], deny: [], runRoot: long, mode: "launcher" });
    await expect(filter.lease("bwrap", [])).rejects.toThrow("set TMPDIR to a shorter folder");
    expect(existsSync(long)).toBe(false);
  });
});
