import type { PolicyViolation } from "../plans/policy.js";
import { isBlocking, type JudgedOutcome } from "../plans/policy-judgement.js";
import type { Templates } from "./templates.js";

/** A policy violation as a reviewer reads it, worded by templates/policy-violation.hbs (raw text: the template showing it escapes it). */
export function policyViolationText(t: Templates, violation: PolicyViolation): string {
  // A violation stored before the wording moved to the template carries its own sentence.
  if (violation.message) return violation.message;
  return t.render("policy-violation", { ...violation, number: violation.policy + 1 }).trim();
}

/** Addresses a policy's line lists in a comment, check or page; the rest are counted. */
export const SHOWN_ADDRESSES = 10;

/** Policy outcomes as templates/policy-results.hbs (and the run page) show them. */
export function policyResultsView(outcomes: JudgedOutcome[] | undefined) {
  return (outcomes ?? []).map((o) => ({
    ...o,
    blocking: isBlocking(o),
    organisation: o.source === "organisation",
    shown: o.addresses.slice(0, SHOWN_ADDRESSES),
    more: Math.max(0, o.matched - Math.min(SHOWN_ADDRESSES, o.addresses.length)),
    ownerNames: [...o.owners.teams.map((team) => `team ${team}`), ...o.owners.users.map((user) => `@${user}`)],
  }));
}
