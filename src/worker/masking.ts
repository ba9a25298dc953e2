import type { Run } from "../db/runs.js";
import { projectMasker, type Masker } from "../plans/mask.js";
import { allowlistedEnv } from "./terraform-job.js";
import type { WorkerDeps } from "./deps.js";

/** The masker for everything a run of this project stores or shows. */
export const maskerFor = (deps: WorkerDeps, run: Run): Masker => projectMasker(allowlistedEnv(run.config.env ?? []), deps.maskPatterns);
