import type { PolicyViolation } from "../plans/policy.js";
import type { Templates } from "./templates.js";

/** A policy violation as a reviewer reads it, worded by templates/policy-violation.hbs (raw text: the template showing it escapes it). */
export function policyViolationText(t: Templates, violation: PolicyViolation): string {
  // A violation stored before the wording moved to the template carries its own sentence.
  if (violation.message) return violation.message;
  return t.render("policy-violation", { ...violation, number: violation.policy + 1 }).trim();
}
