import { lookup as dnsLookup } from "node:dns/promises";
import net from "node:net";
import os from "node:os";
import type { EgressRule } from "../../settings/egress-rules.js";

/** Resolves a host name on the host (never inside the sandbox): every address, in the resolver's order. */
export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

export interface EgressPolicyOptions {
  /** PLANGATE_SANDBOX_EGRESS_ALLOW: exceptions to everything refused (defaults and DENY alike). */
  allow: EgressRule[];
  /** PLANGATE_SANDBOX_EGRESS_DENY: refused besides the defaults. */
  deny: EgressRule[];
  /** plangate's own database (from DATABASE_URL or the embedded database's URL). */
  database?: { host: string; port: number };
  /** The port plangate's webhook server listens on. */
  ownPort?: number;
  lookup?: Lookup;
}

/** A destination the filter refused: what was asked for, what it resolved to, and why. */
export interface Refusal {
  host: string;
  port: number;
  address: string;
  reason: string;
}

export type Decision =
  | { verdict: "open"; address: string }
  | { verdict: "refused"; refusal: Refusal }
  /** Not a policy matter: the name does not resolve on the host. */
  | { verdict: "unresolvable"; message: string };

/** Address ranges refused by default, each with the reason a PR author reads. */
const DEFAULT_RANGES: [reason: string, ranges: [address: string, prefix: number, family: "ipv4" | "ipv6"][]][] = [
  ["loopback", [["127.0.0.0", 8, "ipv4"], ["::1", 128, "ipv6"]]],
  ["link-local, where clouds hand out credentials", [["169.254.0.0", 16, "ipv4"], ["fe80::", 10, "ipv6"]]],
  ["unspecified address, which reaches this host", [["0.0.0.0", 8, "ipv4"], ["::", 128, "ipv6"]]],
];

const familyOf = (address: string): "ipv4" | "ipv6" => (net.isIPv6(address) ? "ipv6" : "ipv4");

function blockListOf(ranges: [string, number, "ipv4" | "ipv6"][]): net.BlockList {
  const list = new net.BlockList();
  for (const [address, prefix, family] of ranges) list.addSubnet(address, prefix, family);
  return list;
}

/** `host:port` as a PR author writes it in a setting: IPv6 addresses in brackets. */
export const hostPort = (host: string, port: number) => (net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);

/** Lower case, without brackets or a trailing dot: the form rules and the hosts file use. */
export const normalizeHost = (host: string) => host.replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "").toLowerCase();

/**
 * Decides where a sandboxed program may connect. Names are resolved here, on
 * the host, and the RESOLVED address is checked (a name cannot smuggle in a
 * loopback address); the caller connects to exactly the address returned.
 * Refused by default: loopback, link-local, the unspecified address, this
 * host's own addresses, plangate's database and its own port, and every DENY
 * entry. An ALLOW entry opens its destination whatever else refuses it, so
 * DENY=0.0.0.0/0,::/0 with a list of ALLOW entries is an allowlist.
 */
export class EgressPolicy {
  private readonly defaults = DEFAULT_RANGES.map(([reason, ranges]) => ({ reason, list: blockListOf(ranges) }));
  private readonly allowRanges: { rule: EgressRule; list: net.BlockList }[];
  private readonly denyRanges: { rule: EgressRule; list: net.BlockList }[];
  private readonly lookup: Lookup;

  constructor(private readonly options: EgressPolicyOptions) {
    this.lookup = options.lookup ?? systemLookup;
    const ranges = (rules: EgressRule[]) =>
      rules.flatMap((rule) => (rule.kind === "cidr" ? [{ rule, list: blockListOf([[rule.address, rule.prefix, rule.family]]) }] : []));
    this.allowRanges = ranges(options.allow);
    this.denyRanges = ranges(options.deny);
  }

  async decide(requestedHost: string, port: number): Promise<Decision> {
    const host = normalizeHost(requestedHost);
    let addresses: string[];
    if (net.isIP(host)) addresses = [host];
    else {
      addresses = await this.lookup(host).catch(() => []);
      if (!addresses.length) return { verdict: "unresolvable", message: `${host} does not resolve` };
    }
    const allowedByName = this.options.allow.some((r) => r.kind === "host" && r.host === host && r.port === port);
    let first: Refusal | undefined;
    for (const address of addresses) {
      const allowed = allowedByName || this.allowRanges.some(({ rule, list }) => portMatches(rule, port) && list.check(address, familyOf(address)));
      const reason = allowed ? undefined : await this.refusedBecause(host, port, address);
      if (!reason) return { verdict: "open", address };
      first ??= { host, port, address, reason };
    }
    return { verdict: "refused", refusal: first! };
  }

  /** Why a destination is refused, most specific reason first; undefined when it is not. */
  private async refusedBecause(host: string, port: number, address: string): Promise<string | undefined> {
    const db = this.options.database;
    if (db && db.port === port && (await this.names(db.host, host, address))) return "plangate's database";
    const thisHost = this.isThisHost(address);
    if (this.options.ownPort === port && thisHost) return "plangate's own port";
    for (const rule of this.options.deny) {
      if (!portMatches(rule, port)) continue;
      if (rule.kind === "host" ? await this.names(rule.host, host, address) : this.denyRanges.find((d) => d.rule === rule)!.list.check(address, familyOf(address))) {
        return `PLANGATE_SANDBOX_EGRESS_DENY entry ${rule.text}`;
      }
    }
    const range = this.defaults.find(({ list }) => list.check(address, familyOf(address)));
    if (range) return range.reason;
    return thisHost ? "an address of this host" : undefined;
  }

  /** True when `name` is the requested host, or resolves on the host to the address asked for. */
  private async names(name: string, requested: string, address: string): Promise<boolean> {
    if (name === requested || name === address) return true;
    if (net.isIP(name)) return sameAddress(name, address);
    const resolved = await this.lookup(name).catch(() => []);
    return resolved.some((a) => sameAddress(a, address));
  }

  /** Any address of this machine's interfaces (services listening on all interfaces answer there). */
  private isThisHost(address: string): boolean {
    const own = Object.values(os.networkInterfaces()).flatMap((list) => list ?? []);
    return own.some((i) => sameAddress(i.address, address));
  }
}

const portMatches = (rule: EgressRule, port: number) => rule.port === undefined || rule.port === port;

function sameAddress(a: string, b: string): boolean {
  const list = new net.BlockList();
  list.addAddress(a, familyOf(a));
  return list.check(b, familyOf(b));
}

/** What a PR author reads when the filter refused a connection: the address and the setting that would open it. */
export function refusalProblem(refusal: Refusal): string {
  const asked = hostPort(refusal.host, refusal.port);
  const why = refusal.host === normalizeHost(refusal.address) ? refusal.reason : `resolves to ${refusal.address}: ${refusal.reason}`;
  return `egress refused: ${asked} (${why}); PLANGATE_SANDBOX_EGRESS_ALLOW=${asked} would open it`;
}

/** host:port of a postgres URL: the database the policy refuses. */
export function databaseAddress(url: string | undefined): { host: string; port: number } | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    const host = normalizeHost(decodeURIComponent(u.hostname) || u.searchParams.get("host") || "localhost");
    // A Unix socket folder is not reachable from the sandbox's network namespace at all.
    return host.startsWith("/") ? undefined : { host, port: Number(u.port || u.searchParams.get("port") || 5432) };
  } catch {
    return undefined;
  }
}
