import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import os from "node:os";
import path from "node:path";

/** A line of the sandbox's /etc/hosts (e.g. a name the egress filter answers for). */
export interface HostEntry {
  name: string;
  address: string;
}

export interface SandboxEtcRequest {
  /** The user the sandboxed program runs as (65534 when plangate is root). */
  uid: number;
  gid: number;
  /** That user's home (the run's HOME). */
  home: string;
  hosts?: HostEntry[];
}

export interface SandboxEtc {
  /** bwrap arguments that make this the sandbox's /etc, read-only. */
  bwrapArgs: string[];
  remove(): Promise<void>;
}

/** Host folders of CA certificates (Debian/Ubuntu, RHEL/Fedora): the only part of the host's /etc a run sees. */
const CA_FOLDERS = ["ssl/certs", "ca-certificates", "pki/tls/certs", "pki/ca-trust"];
const NOBODY = 65534;
const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/;

const NSSWITCH = `passwd: files
group: files
shadow: files
hosts: files dns
`;

function passwd(request: SandboxEtcRequest): string {
  const lines = ["root:x:0:0:root:/root:/usr/sbin/nologin", `nobody:x:${NOBODY}:${NOBODY}:nobody:${request.uid === NOBODY ? request.home : "/nonexistent"}:/usr/sbin/nologin`];
  if (request.uid !== 0 && request.uid !== NOBODY) lines.push(`plangate:x:${request.uid}:${request.gid}:plangate sandbox:${request.home}:/bin/sh`);
  return lines.join("\n") + "\n";
}

function group(request: SandboxEtcRequest): string {
  const lines = ["root:x:0:", `nogroup:x:${NOBODY}:`];
  if (request.gid !== 0 && request.gid !== NOBODY) lines.push(`plangate:x:${request.gid}:`);
  return lines.join("\n") + "\n";
}

function hosts(extra: HostEntry[]): string {
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  for (const entry of extra) {
    if (!isIP(entry.address) || !HOST_NAME.test(entry.name)) throw new Error(`not a hosts entry: ${JSON.stringify(entry)}`);
    lines.push(`${entry.address}\t${entry.name}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Writes one run's /etc into a private folder outside its workspace:
 * generated passwd, group, hosts and nsswitch.conf, the host's resolver
 * settings, and mount points for the host's CA certificates. Nothing else of
 * the host's /etc (users, shadow, service configs) is visible in the sandbox.
 */
export async function writeSandboxEtc(request: SandboxEtcRequest): Promise<SandboxEtc> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "plangate-etc-"));
  try {
    await chmod(dir, 0o755); // the sandbox's user must reach it to mount it
    const resolv = await readFile("/etc/resolv.conf", "utf8").catch(() => "");
    const files: Record<string, string> = { passwd: passwd(request), group: group(request), hosts: hosts(request.hosts ?? []), "nsswitch.conf": NSSWITCH, "resolv.conf": resolv };
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text, { mode: 0o644 });
    const args = ["--ro-bind", dir, "/etc"];
    for (const folder of CA_FOLDERS) {
      const host = path.join("/etc", folder);
      if (!existsSync(host)) continue;
      await mkdir(path.join(dir, folder), { recursive: true, mode: 0o755 });
      args.push("--ro-bind", host, host);
    }
    return { bwrapArgs: args, remove: () => rm(dir, { recursive: true, force: true }) };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
