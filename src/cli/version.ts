import { readFileSync } from "node:fs";

/**
 * The version in the installed package's package.json (one place holds it).
 * Resolved from this file (dist/cli/ or src/cli/ sits two levels under the package root).
 */
export function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  return (JSON.parse(text) as { version: string }).version;
}
