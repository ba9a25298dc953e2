import { existsSync, statSync } from "node:fs";
import path from "node:path";

/** Where terraform installs providers from: the public registries (default) or an operator's mirror. */
export type ProviderMirror = { kind: "network"; url: string } | { kind: "filesystem"; path: string };

/**
 * Parses PLANGATE_PROVIDER_MIRROR: an https:// URL (a provider network
 * mirror) or the absolute path of a folder (a filesystem mirror, in
 * terraform's packed or unpacked layout); an error message otherwise.
 */
export function parseProviderMirror(text: string): ProviderMirror | string {
  const value = text.trim();
  if (value.startsWith("https://")) return URL.canParse(value) ? { kind: "network", url: value.endsWith("/") ? value : `${value}/` } : "is not a valid URL";
  if (!path.isAbsolute(value) || value.includes("\0")) return "must be the https:// URL of a provider network mirror or the absolute path of a filesystem mirror";
  if (!existsSync(value) || !statSync(value).isDirectory()) return "names a filesystem mirror folder that does not exist";
  return { kind: "filesystem", path: path.normalize(value) };
}
