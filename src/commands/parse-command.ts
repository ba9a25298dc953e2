/** What a PR comment asks plangate to do: a pure parse of its first line, nothing executed. */

export type CommandName = "plan" | "apply" | "unlock" | "help";

export interface Selector {
  project?: string;
  dir?: string;
  workspace?: string;
  all: boolean;
}

export type ParsedComment =
  | { kind: "none" }
  | { kind: "invalid"; command: CommandName; message: string }
  | { kind: "command"; command: CommandName; selector: Selector };

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

export const USAGE: Record<CommandName, string> = {
  plan: "/plan [--all] [-p PROJECT] [-d DIR] [-w WORKSPACE]",
  apply: "/apply [-p PROJECT] [-d DIR] [-w WORKSPACE]",
  unlock: "/unlock",
  help: "/help",
};

function validValue(key: string, value: string): string | undefined {
  if (key === "workspace") return WORKSPACE.test(value) ? undefined : `workspace "${value}" may hold only letters, digits, ".", "_" and "-"`;
  if (!NAME.test(value)) return `${key} "${value}" may hold only letters, digits, ".", "_", "-" and "/"`;
  if (key === "dir" && (value.startsWith("/") || value.split("/").includes(".."))) return `dir "${value}" must be relative and inside the repository`;
  return undefined;
}

/** Parses a comment body. Only its first line counts; anything else is ignored. */
export function parseComment(body: string): ParsedComment {
  const firstLine = body.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0]!.trim();
  const match = /^\/(plan|apply|unlock|help)(?=\s|$)(.*)$/.exec(firstLine);
  if (!match) return { kind: "none" };
  const command = match[1] as CommandName;
  const tokens = match[2]!.trim().split(/\s+/).filter(Boolean);
  const selector: Selector = { all: false };
  const invalid = (message: string): ParsedComment => ({ kind: "invalid", command, message });
  const seen = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const eq = token.startsWith("--") ? token.indexOf("=") : -1;
    const flagName = eq > 0 ? token.slice(0, eq) : token;
    const flag = Object.hasOwn(FLAGS, flagName) ? FLAGS[flagName] : undefined;
    if (!flag) return invalid(token.startsWith("-") ? `unknown flag ${token}` : `unexpected argument ${token}`);
    if (command === "unlock" || command === "help") return invalid(`/${command} takes no flags`);
    if (flag.key === "all" && command !== "plan") return invalid("--all applies to /plan only");
    if (seen.has(flag.key)) return invalid(`${flagName} is given twice`);
    seen.add(flag.key);
    if (!flag.takesValue) {
      if (eq > 0) return invalid(`${flagName} takes no value`);
      selector.all = true;
      continue;
    }
    const value = eq > 0 ? token.slice(eq + 1) : tokens[++i];
    if (value === undefined || value === "" || (eq < 0 && value.startsWith("-"))) return invalid(`${flagName} needs a value`);
    const problem = validValue(flag.key, value);
    if (problem) return invalid(problem);
    selector[flag.key as "project" | "dir" | "workspace"] = value.replace(/\/+$/, "") || value;
  }
  if (selector.all && (selector.project || selector.dir)) return invalid("--all cannot be combined with -p or -d");
  return { kind: "command", command, selector };
}

export { COMMANDS };
