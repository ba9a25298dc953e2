import { createMasker, type Masker } from "../plans/mask.js";
import type { WorkerDeps } from "./deps.js";
import { passableValues } from "../run/project-env.js";

/** The masker for everything a project's runs store or show: every value its `env` could pass in, plus the operator's patterns. */
export const maskerFor = (deps: WorkerDeps, envNames: string[]): Masker => createMasker(passableValues(deps, envNames), deps.maskPatterns);
