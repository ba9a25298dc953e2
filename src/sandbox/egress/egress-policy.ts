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
  /** The ALLOW entry that would open it, when it is not the `host:port` asked for. */
  opener?: string;
}

export type Decision =
  | { verdict: "open"; address: string }
  | { verdict: "refused"; refusal: Refusal }
  /** Not a policy matter: the name does not resolve on the host. */
  | { verdict: "unresolvable"; message: string };

const LINK_LOCAL = "link-local, where clouds hand out credentials";

/** Address ranges refused by default, each with the reason a PR author reads. */
const DEFAULT_RANGES: [reason: string, ranges: [address: string, prefix: number, family: "ipv4" | "ipv6"][]][] = [
  ["loopback", [["127.0.0.0", 8, "ipv4"], ["::1", 128, "ipv6"]]],
  [LINK_LOCAL, [["fe80::", 10, "ipv6"]]],
  ["unspecified address, which reaches this host", [["0.0.0.0", 8, "ipv4"], ["::", 128, "ipv6"]]],
];

interface MetadataRange {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
  reason: string;
  list: net.BlockList;
}

/**
 * Where clouds' metadata services hand a machine's credentials to anything
 * that asks. Only an ALLOW entry that is itself an address range inside one
 * of these opens it (`169.254.169.254:80`, `169.254.0.0/16`): never a host
 * name, which someone else's DNS may point here, nor a wider range such as
 * 0.0.0.0/0 that happens to cover it.
 */
const METADATA_RANGES: MetadataRange[] = (
  [
    // AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean (169.254.169.254), AWS ECS (169.254.170.2), Tencent (169.254.0.23)
    ["169.254.0.0", 16, "ipv4", LINK_LOCAL],
    ["fd00:ec2::254", 128, "ipv6", "AWS's metadata service over IPv6, where it hands out credentials"],
    ["100.100.100.200", 32, "ipv4", "Alibaba Cloud's metadata service, where it hands out credentials"],
    ["192.0.0.192", 32, "ipv4", "Oracle Cloud's metadata service, where it hands out credentials"],
  ] as const
).map(([address, prefix, family, reason]) => ({ address, prefix, family, reason, list: blockListOf([[address, prefix, family]]) }));

/** The IPv4 address an IPv6 one stands for (IPv4-mapped `::ffff:a.b.c.d`, NAT64's 64:ff9b::/96), else the address itself. */
function ipv4Reached(address: string): string {
  if (!net.isIPv6(address)) return address;
  const embedded = /^\[(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(new URL(`http://[${address}]/`).host);
  if (!embedded) return address;
  const [high, low] = [parseInt(embedded[1]!, 16), parseInt(embedded[2]!, 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join(".");
}

/** The metadata range an address reaches, if any. */
function metadataRangeOf(address: string): MetadataRange | undefined {
  const reached = ipv4Reached(address);
  return METADATA_RANGES.find((m) => m.list.check(reached, familyOf(reached)));
}

/** True when an ALLOW range lies wholly inside a metadata range: an operator who wrote it meant the metadata service. */
const namesMetadata = (rule: EgressRule & { kind: "cidr" }, range: MetadataRange) =>
  rule.prefix >= range.prefix && rule.family === range.family && range.list.check(rule.address, rule.family);

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
 * Refused by default: loopback, link-local, every known cloud metadata
 * address, the unspecified address, this host's own addresses, plangate's
 * database and its own port, and every DENY entry. An ALLOW entry opens its
 * destination whatever else refuses it, so DENY=0.0.0.0/0,::/0 with a list of
 * ALLOW entries is an allowlist; only a metadata address asks for an ALLOW
 * entry that names it (an address range inside its own).
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
      const metadata = metadataRangeOf(address);
      if (metadata) {
        if (this.opensMetadata(metadata, address, port)) return { verdict: "open", address };
        first ??= { host, port, address, reason: metadata.reason, opener: hostPort(ipv4Reached(address), port) };
        continue;
      }
      const allowed = allowedByName || this.allowRanges.some(({ rule, list }) => portMatches(rule, port) && list.check(address, familyOf(address)));
      const reason = allowed ? undefined : await this.refusedBecause(host, port, address);
      if (!reason) return { verdict: "open", address };
      first ??= { host, port, address, reason };
    }
    return { verdict: "refused", refusal: first! };
  }

  /**
   * The ALLOW entries through which a sandboxed program reaches `target` on
   * its port: those that name it or an address it resolves to, and, for a
   * service on this host, those that cover any address of this host (a
   * server listening on every interface answers on each).
   */
  async allowEntriesReaching(target: { host: string; port: number }): Promise<EgressRule[]> {
    const host = normalizeHost(target.host);
    let addresses = net.isIP(host) ? [host] : await this.lookup(host).catch(() => []);
    if (addresses.some((a) => this.isThisHost(a))) addresses = [...addresses, ...thisHostAddresses()];
    const reached = (address: string) => addresses.some((a) => sameAddress(a, address));
    const found: EgressRule[] = [];
    for (const rule of this.options.allow) {
      if (!portMatches(rule, target.port)) continue;
      const opens =
        rule.kind === "host"
          ? rule.host === host || (await this.lookup(rule.host).catch(() => [])).some(reached)
          : addresses.some((a) => this.allowRanges.find((r) => r.rule === rule)!.list.check(a, familyOf(a)));
      if (opens) found.push(rule);
    }
    return found;
  }

  /** A metadata address is open only through an ALLOW range inside its metadata range (see METADATA_RANGES). */
  private opensMetadata(metadata: MetadataRange, address: string, port: number): boolean {
    const reached = ipv4Reached(address);
    return this.allowRanges.some(
      ({ rule, list }) => rule.kind === "cidr" && portMatches(rule, port) && namesMetadata(rule, metadata) && list.check(reached, familyOf(reached)),
    );
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
    return thisHostAddresses().some((own) => sameAddress(own, address));
  }
}

/** The addresses of this machine's interfaces, loopback included. */
const thisHostAddresses = () =>
  Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address);

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
  return `egress refused: ${asked} (${why}); PLANGATE_SANDBOX_EGRESS_ALLOW=${refusal.opener ?? asked} would open it`;
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
