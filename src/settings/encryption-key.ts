import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * PLANGATE_ENCRYPTION_KEY when set; otherwise a key generated once under the
 * data dir, so a first `npm start` works (production should set the variable).
 */
export async function encryptionKeyFor(configured: Buffer | undefined, dataDir: string, warn: (m: string) => void): Promise<Buffer> {
  if (configured) return configured;
  const file = path.join(dataDir, "encryption.key");
  if (!existsSync(file)) {
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, randomBytes(32).toString("hex"), { mode: 0o600, flag: "wx" });
  }
  warn(`PLANGATE_ENCRYPTION_KEY is not set: plans are encrypted with the key in ${file}`);
  return Buffer.from((await readFile(file, "utf8")).trim(), "hex");
}
