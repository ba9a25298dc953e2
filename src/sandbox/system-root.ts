import { existsSync, lstatSync } from "node:fs";

/**
 * The system part of a sandbox's root: /usr read-only and the top-level
 * folders the host keeps beside it (links into /usr on a merged-/usr host):
 * programs and their libraries, nothing else of the host. Every bubblewrap
 * plangate starts lays out its root from this list (a run's, a batch's
 * nested one per project, the egress filter's holder).
 */
export function systemRootArgs(): string[] {
  const args = ["--ro-bind", "/usr", "/usr"];
  for (const top of ["bin", "lib", "lib64", "sbin"]) {
    const host = `/${top}`;
    if (!existsSync(host)) continue;
    if (lstatSync(host).isSymbolicLink()) args.push("--symlink", `usr/${top}`, host);
    else args.push("--ro-bind", host, host);
  }
  return args;
}
