/**
 * The hidden markers that identify plangate's own comments (DESIGN.md section
 * 4): `<!-- NAME part=N -->`. Only the App's own comments are read as its own
 * (octokit-github.ts); the marker says which of them is which.
 */

/** The plan comment of a PR (edited in place on every plan). */
export const PLAN_MARKER = "plangate:plan";
/** The notice that a fork's PR is not planned. */
export const FORK_MARKER = "plangate:fork";
/** The comment of one apply (its run group). */
export const applyMarker = (groupId: number) => `plangate:apply group=${groupId}`;
/** The comment of one merge queue verification (its run group). */
export const queueMarker = (groupId: number) => `plangate:queue group=${groupId}`;
/** A drift issue's hidden line (no parts): one issue per project and workspace. */
export const driftMarkerLine = (project: string, workspace: string) => `<!-- plangate:drift project=${project} workspace=${workspace} -->`;

/** The hidden line a comment (part `part` of a split one) carries. */
export const markerLine = (marker: string, part = 1) => `<!-- ${marker} part=${part} -->`;

/** Which part of a comment marked `marker` this body is, or undefined when it does not carry the marker. */
export function markerPart(body: string, marker: string): number | undefined {
  const match = new RegExp(`<!-- ${marker.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} part=(\\d+) -->`).exec(body);
  return match ? Number(match[1]) : undefined;
}
