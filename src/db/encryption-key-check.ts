import { createHmac, timingSafeEqual } from "node:crypto";
import type { Pool } from "./pool.js";
import { SettingsError } from "../settings/settings.js";

const LABEL = "plangate encryption key check v1";

/** A value derived from the key that reveals nothing of it, stored once per database. */
export const keyCheckValue = (key: Buffer) => createHmac("sha256", key).update(LABEL).digest("hex");

/**
 * Refuses to run with a key other than the one this database's plans were
 * sealed with: they could not be opened, and new ones would be sealed apart.
 */
export async function verifyEncryptionKey(pool: Pool, key: Buffer): Promise<void> {
  const value = keyCheckValue(key);
  await pool.query("insert into encryption_key_check (id, check_value) values (1, $1) on conflict (id) do nothing", [value]);
  const { rows } = await pool.query<{ check_value: string }>("select check_value from encryption_key_check where id = 1");
  const stored = Buffer.from(rows[0]!.check_value, "hex");
  if (stored.length !== 32 || !timingSafeEqual(stored, Buffer.from(value, "hex"))) {
    throw new SettingsError(
      "PLANGATE_ENCRYPTION_KEY is not the key this database's plans were sealed with (its key check value differs): start with the original key",
    );
  }
}
