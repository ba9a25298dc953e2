import type { ChangeCounts } from "../plans/changes.js";
import { denies, type PolicyResult } from "../plans/policy-results.js";
import type { Templates } from "../render/templates.js";
import { inertTerminal } from "../text/terminal-text.js";

/** Addresses printed per policy; the rest are counted. */
export const SHOWN_ADDRESSES = 20;

export interface PolicyReport {
  /** The plan file, for `policy test` (absent for `plan DIR`, which prints the plan itself). */
  planFile?: string;
  counts?: ChangeCounts;
  changes?: number;
  configFile: string;
  project: string;
  drift: boolean;
  results: PolicyResult[];
}

/** Text a policy, its config or a plan put here, as a terminal may show it. */
const inert = (text: string | undefined) => (text === undefined ? undefined : inertTerminal(text.trim()));

/** Every policy's result, worded by templates/policy-test.hbs, with every value from a file or a plan made inert for a terminal. */
export function policyReportText(t: Templates, report: PolicyReport): string {
  const results = report.results.map((r) => ({
    ...r,
    name: inert(r.name),
    message: inert(r.message),
    error: inert(r.error),
    projects: r.status === "skipped" ? r.projects?.map(inertTerminal) : undefined,
    /** The message, said where the policy matched or failed. */
    said: r.status === "match" || r.status === "error" ? inert(r.message) : undefined,
    counted: r.status === "match" && r.matched > 0,
    shown: r.addresses.slice(0, SHOWN_ADDRESSES).map(inertTerminal),
    more: Math.max(0, r.matched - Math.min(SHOWN_ADDRESSES, r.addresses.length)),
    short: r.short && inertShort(r.short),
  }));
  const approvals = report.results.filter((r) => r.status === "match" && r.effect === "require_approval").map((r) => inertTerminal(r.name ?? `policy ${r.number}`));
  return t.render("policy-test", {
    ...report,
    planFile: inert(report.planFile),
    configFile: inert(report.configFile),
    project: inert(report.project),
    results,
    denied: report.results.filter(denies).length,
    approvals,
  });
}

/** The short form's own words (globs of types and addresses come from the config). */
function inertShort(short: NonNullable<PolicyResult["short"]>) {
  if (short.rule !== "deny") return short;
  return { ...short, resourceTypes: short.resourceTypes.map(inertTerminal), addressPatterns: short.addressPatterns.map(inertTerminal), addresses: [] };
}
