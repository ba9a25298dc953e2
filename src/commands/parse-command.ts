/** What a PR comment asks plangate to do: a pure parse of its first line, nothing executed. */

export type CommandName = "plan" | "apply" | "unlock" | "help" | "override";

export interface Selector {
  project?: string;
  dir?: string;
  workspace?: string;
  all: boolean;
}

/** Why a command line is refused: the facts templates/command-problem.hbs words for the usage reply. */
export type CommandProblem =
  | { kind: "unknown-flag" | "unexpected-argument"; token: string }
  | { kind: "takes-no-flags"; command: CommandName }
  | { kind: "all-plan-only" | "all-with-selector" }
  | { kind: "given-twice" | "takes-no-value" | "needs-value"; flag: string }
  | { kind: "bad-workspace" | "bad-name" | "dir-outside"; key: "project" | "dir" | "workspace"; value: string }
  | { kind: "override-needs-policy" | "override-needs-reason" }
  | { kind: "bad-policy-name"; value: string };

export type ParsedComment =
  | { kind: "none" }
  | { kind: "invalid"; command: CommandName; problem: CommandProblem }
  | { kind: "command"; command: CommandName; selector: Selector; override?: Override };

/** `/override NAME REASON…`: which policy, and why (untrusted text, shown inert and audited). */
export interface Override {
  policy: string;
  reason: string;
}

/** The longest reason kept; the rest of the line is cut. */
export const MAX_REASON = 500;
const POLICY_NAME = /^[A-Za-z0-9._-]{1,100}$/;

const COMMANDS: CommandName[] = ["plan", "apply", "unlock", "help"];
const NAME = /^[A-Za-z0-9._/-]{1,200}$/;
const WORKSPACE = /^[A-Za-z0-9._-]{1,90}$/;

const FLAGS: Record<string, { key: "project" | "dir" | "workspace" | "all"; takesValue: boolean }> = {
  "-p": { key: "project", takesValue: true },
  "--project": { key: "project", takesValue: true },
  "-d": { key: "dir", takesValue: true },
  "--dir": { key: "dir", takesValue: true },
  "-w": { key: "workspace", takesValue: true },
  "--workspace": { key: "workspace", takesValue: true },
  "--all": { key: "all", takesValue: false },
};

function validValue(key: "project" | "dir" | "workspace", value: string): CommandProblem | undefined {
  if (key === "workspace") return WORKSPACE.test(value) ? undefined : { kind: "bad-workspace", key, value };
  if (!NAME.test(value)) return { kind: "bad-name", key, value };
  if (key === "dir" && (value.startsWith("/") || value.split("/").includes(".."))) return { kind: "dir-outside", key, value };
  return undefined;
}

/** Parses a comment body. Only its first line counts; anything else is ignored. */
export function parseComment(body: string): ParsedComment {
  const firstLine = body.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0]!.trim();
  const match = /^\/(plan|apply|unlock|help|override)(?=\s|$)(.*)$/.exec(firstLine);
  if (!match) return { kind: "none" };
  const command = match[1] as CommandName;
  if (command === "override") return parseOverride(match[2]!.trim());
  const tokens = match[2]!.trim().split(/\s+/).filter(Boolean);
  const selector: Selector = { all: false };
  const invalid = (problem: CommandProblem): ParsedComment => ({ kind: "invalid", command, problem });
  const seen = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const eq = token.startsWith("--") ? token.indexOf("=") : -1;
    const flagName = eq > 0 ? token.slice(0, eq) : token;
    const flag = Object.hasOwn(FLAGS, flagName) ? FLAGS[flagName] : undefined;
    if (!flag) return invalid({ kind: token.startsWith("-") ? "unknown-flag" : "unexpected-argument", token });
    if (command === "unlock" || command === "help") return invalid({ kind: "takes-no-flags", command });
    if (flag.key === "all" && command !== "plan") return invalid({ kind: "all-plan-only" });
    if (seen.has(flag.key)) return invalid({ kind: "given-twice", flag: flagName });
    seen.add(flag.key);
    if (!flag.takesValue) {
      if (eq > 0) return invalid({ kind: "takes-no-value", flag: flagName });
      selector.all = true;
      continue;
    }
    const value = eq > 0 ? token.slice(eq + 1) : tokens[++i];
    if (value === undefined || value === "" || (eq < 0 && value.startsWith("-"))) return invalid({ kind: "needs-value", flag: flagName });
    const problem = validValue(flag.key as "project" | "dir" | "workspace", value);
    if (problem) return invalid(problem);
    selector[flag.key as "project" | "dir" | "workspace"] = value.replace(/\/+$/, "") || value;
  }
  if (selector.all && (selector.project || selector.dir)) return invalid({ kind: "all-with-selector" });
  return { kind: "command", command, selector };
}

export { COMMANDS };

/** `/override NAME REASON…`: a policy's name, then the reason (required), the rest of the first line. */
function parseOverride(rest: string): ParsedComment {
  const invalid = (problem: CommandProblem): ParsedComment => ({ kind: "invalid", command: "override", problem });
  const [policy, ...words] = rest.split(/\s+/).filter(Boolean);
  if (!policy) return invalid({ kind: "override-needs-policy" });
  if (!POLICY_NAME.test(policy)) return invalid({ kind: "bad-policy-name", value: policy.slice(0, 100) });
  const reason = words.join(" ").slice(0, MAX_REASON);
  if (!reason) return invalid({ kind: "override-needs-reason" });
  return { kind: "command", command: "override", selector: { all: false }, override: { policy, reason } };
}
