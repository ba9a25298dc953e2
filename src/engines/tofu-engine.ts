import { cliEngine } from "./terraform-engine.js";

/** OpenTofu (PLANGATE_TOFU_BIN): terraform's commands, another binary. */
export const tofu = cliEngine("tofu", (tools) => tools.binaries.tofuBin);
