/**
 * How much work one commit may ask of plangate (DESIGN.md section 3,
 * "Bounded work for untrusted input"): what is read and exported of it, and
 * how many projects it may hold.
 */
export interface InputLimits {
  /** PLANGATE_MAX_COMMIT_SIZE: bytes of a commit read or exported at most, every path counted. */
  maxCommitBytes: number;
  /** PLANGATE_MAX_PROJECTS: projects a commit may list or hold. */
  maxProjects: number;
}

export const DEFAULT_INPUT_LIMITS: InputLimits = { maxCommitBytes: 1024 ** 3, maxProjects: 2000 };

/**
 * Each path of a commit costs this much besides its contents (a tar header's
 * worth): a commit of millions of empty files is as large as what it costs to
 * list and export, not zero.
 */
export const PATH_COST_BYTES = 512;

/**
 * A commit asks more than a limit allows. Its message names the setting; the
 * plan fails with it at once, since trying again cannot help.
 */
export class InputRefused extends Error {}
