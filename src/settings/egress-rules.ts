import net from "node:net";

/** One entry of PLANGATE_SANDBOX_EGRESS_ALLOW / _DENY: a host name or an address range, on one port or all. */
export type EgressRule =
  | { kind: "host"; host: string; port: number; text: string }
  | { kind: "cidr"; address: string; prefix: number; family: "ipv4" | "ipv6"; port?: number; text: string };

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function parseRange(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const [address = "", prefixText] = text.split("/");
  const version = net.isIP(address);
  if (!version) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/**
 * Parses one entry: `host:port`, `CIDR:port`, `CIDR` (an address alone is a /32 or /128).
 * IPv6 ranges with a port are written in brackets: `[fd00::/8]:443`.
 */
export function parseEgressRule(entry: string): EgressRule | string {
  const text = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    const range = parseRange(bracketed[1]!);
    const port = bracketed[2] === undefined ? undefined : parsePort(bracketed[2]);
    if (!range || (bracketed[2] !== undefined && port === undefined)) return `"${text}" is not an address range with an optional port`;
    return { kind: "cidr", ...range, port, text };
  }
  const whole = parseRange(text);
  if (whole) return { kind: "cidr", ...whole, text };
  const colon = text.lastIndexOf(":");
  if (colon < 0) return `"${text}" needs a port (host:port), or must be an address range (CIDR)`;
  const port = parsePort(text.slice(colon + 1));
  if (port === undefined) return `"${text}" has no valid port`;
  const head = text.slice(0, colon);
  const range = parseRange(head);
  if (range) return { kind: "cidr", ...range, port, text };
  if (HOST_NAME.test(head)) return { kind: "host", host: head.toLowerCase(), port, text };
  return `"${text}" is neither host:port, CIDR:port nor CIDR`;
}

/** Parses a comma list; returns the rules or the first problem. */
export function parseEgressRules(list: string): EgressRule[] | string {
  const rules: EgressRule[] = [];
  for (const entry of list.split(",").map((e) => e.trim()).filter(Boolean)) {
    const rule = parseEgressRule(entry);
    if (typeof rule === "string") return rule;
    rules.push(rule);
  }
  return rules;
}
