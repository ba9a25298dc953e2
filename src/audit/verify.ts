import type { Queryable } from "../db/pool.js";
import { auditHash, GENESIS_HASH, type AuditRowContent } from "./audit-log.js";

export type VerifyResult =
  | { ok: true; checked: number }
  | { ok: false; checked: number; brokenId: number; reason: string };

interface StoredRow extends Omit<AuditRowContent, "created_at"> {
  created_at: Date;
  prev_hash: string;
  hash: string;
}

const PAGE = 5000;

/** Walks the chain in id order and stops at the first row whose links or hash do not hold. */
export async function verifyAuditChain(db: Queryable): Promise<VerifyResult> {
  let expectedPrev = GENESIS_HASH;
  let afterId = 0;
  let checked = 0;
  for (;;) {
    const { rows } = await db.query<StoredRow>(
      `select id, created_at, action, actor, repo, pull_number, project, workspace, sha, run_id, details, prev_hash, hash
         from audit_events where id > $1 order by id limit $2`,
      [afterId, PAGE],
    );
    for (const r of rows) {
      if (r.prev_hash !== expectedPrev) {
        return { ok: false, checked, brokenId: r.id, reason: "prev_hash does not match the hash of the row before it" };
      }
      const { prev_hash, hash, ...content } = r;
      const recomputed = auditHash(prev_hash, { ...content, created_at: r.created_at.toISOString() });
      if (recomputed !== hash) return { ok: false, checked, brokenId: r.id, reason: "content does not match its hash" };
      expectedPrev = hash;
      afterId = r.id;
      checked++;
    }
    if (rows.length < PAGE) return { ok: true, checked };
  }
}
