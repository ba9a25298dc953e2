import net from "node:net";
import { hostPort, normalizeHost } from "./egress-policy.js";
import { PROXY_HOST, type Forward } from "./forward-plan.js";

/**
 * Failed direct connections as Go (`dial tcp ADDR:PORT: connect: ...`) and
 * Node (`connect ECONNREFUSED ADDR:PORT`) print them. Any space may be a line
 * break: terraform wraps a provider's error at 80 columns.
 */
const DIAL_FAILED = [
  /dial\s+tcp\s+(\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5}):\s+connect:\s+(?:connection\s+refused|network\s+is\s+unreachable)/g,
  /connect\s+(?:ECONNREFUSED|ENETUNREACH)\s+([0-9A-Fa-f:.]+):(\d{1,5})/g,
];
/** Names a program tried to resolve inside the sandbox, where no resolver is reachable. */
const LOOKUP_FAILED = [/dial\s+tcp:\s+lookup\s+([A-Za-z0-9.-]+)/g, /getaddrinfo\s+(?:ENOTFOUND|EAI_AGAIN)\s+([A-Za-z0-9.-]+)/g];
const MAX_PROBLEMS = 10;

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * What a sandboxed program's output shows it could not reach because the
 * sandbox has a network of its own. Clients that bypass the HTTP proxy (Go
 * never proxies loopback destinations; database drivers never use one) meet
 * a closed port or no route, not the filter, so without this the PR author
 * would read "connection refused" and not learn the setting.
 */
export function dialProblems(output: string, forwards: Forward[]): string[] {
  const problems = new Set<string>();
  for (const pattern of DIAL_FAILED) {
    for (const match of output.matchAll(pattern)) {
      const address = normalizeHost(match[1]!);
      const port = Number(match[2]);
      if (address === PROXY_HOST || forwards.some((f) => f.host === address && f.port === port)) continue;
      const destination = hostPort(address, port);
      problems.add(
        net.isIP(address) && LOOPBACK.check(address, net.isIPv6(address) ? "ipv6" : "ipv4")
          ? `egress refused: ${destination} (loopback: the sandbox has a network of its own, and the host's loopback is not in it); PLANGATE_SANDBOX_EGRESS_ALLOW=${destination} would open it`
          : `egress refused: ${destination} (a direct connection: only HTTP(S) through the sandbox's proxy leaves the sandbox); give it a host name and set PLANGATE_SANDBOX_EGRESS_ALLOW=NAME:${port} to open it`,
      );
    }
  }
  for (const pattern of LOOKUP_FAILED) {
    for (const match of output.matchAll(pattern)) {
      const name = normalizeHost(match[1]!);
      if (net.isIP(name)) continue;
      problems.add(`egress refused: ${name} cannot be resolved inside the sandbox (names resolve on the host, for HTTP(S) through the proxy); PLANGATE_SANDBOX_EGRESS_ALLOW=${name}:PORT would open it to direct connections`);
    }
  }
  return [...problems].slice(0, MAX_PROBLEMS);
}
