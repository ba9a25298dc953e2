import { FORK_MARKER, markerLine } from "../github/markers.js";
import type { Templates } from "../render/templates.js";
import type { NoticePayload } from "./jobs.js";


export const isFork = (head: string | null, base: string) => head !== base;

/** The explanation a fork PR gets instead of a plan; posted once (marker). */
export function forkNotice(installationId: number, owner: string, repo: string, number: number, headRepo: string | null, templates: Templates): NoticePayload {
  const body = templates.render("fork-not-planned", { marker: markerLine(FORK_MARKER), headRepo: headRepo ?? "a deleted fork", baseRepo: `${owner}/${repo}` });
  return { installationId, owner, repo, number, body, marker: FORK_MARKER };
}
