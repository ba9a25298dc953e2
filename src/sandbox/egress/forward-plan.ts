import net from "node:net";
import type { EgressRule } from "../../settings/egress-rules.js";
import type { HostEntry } from "../sandbox-etc.js";
import { hostPort } from "./egress-policy.js";

/** One listener of the in-sandbox forwarder: a TCP client at host:port reaches `target` through the filter. */
export interface Forward {
  host: string;
  port: number;
  target: string;
}

export interface ForwardPlan {
  forwards: Forward[];
  /** Lines of the sandbox's /etc/hosts: each allowed host name on a loopback address of its own. */
  hosts: HostEntry[];
}

/** Where the in-sandbox HTTP proxy listens: an address no PR's loopback destination and no forward uses. */
export const PROXY_HOST = "127.0.2.1";

/** Loopback addresses the sandbox's own loopback interface answers on. */
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/** 127.0.1.1 to 127.0.1.254: one per allowed host name. */
const NAME_ADDRESS_LIMIT = 254;

/**
 * The listeners that let non-HTTP clients (terraform's `pg` backend, a
 * database driver) reach PLANGATE_SANDBOX_EGRESS_ALLOW entries: a loopback
 * address:port is listened on as it is; a host name gets a loopback address
 * of its own (127.0.1.x) through the sandbox's /etc/hosts. Other literal
 * addresses and ranges cannot exist inside the sandbox (only loopback does):
 * they are reachable through the HTTP proxy only.
 */
export function forwardPlan(allow: EgressRule[]): ForwardPlan {
  const forwards: Forward[] = [];
  const names = new Map<string, string>();
  for (const rule of allow) {
    if (rule.kind === "host") {
      let address = names.get(rule.host);
      if (!address) {
        if (names.size >= NAME_ADDRESS_LIMIT) throw new Error(`PLANGATE_SANDBOX_EGRESS_ALLOW names more than ${NAME_ADDRESS_LIMIT} hosts`);
        address = `127.0.1.${names.size + 1}`;
        names.set(rule.host, address);
      }
      forwards.push({ host: address, port: rule.port, target: hostPort(rule.host, rule.port) });
    } else if (rule.port !== undefined && rule.prefix === (rule.family === "ipv4" ? 32 : 128) && LOOPBACK.check(rule.address, rule.family)) {
      forwards.push({ host: rule.address, port: rule.port, target: hostPort(rule.address, rule.port) });
    }
  }
  const unique = forwards.filter((f, i) => forwards.findIndex((g) => g.host === f.host && g.port === f.port) === i);
  return { forwards: unique, hosts: [...names].map(([name, address]) => ({ name, address })) };
}
