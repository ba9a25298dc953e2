import path from "node:path";
import type { ProjectConfig } from "../settings/repo-config.js";

const IGNORED = /(^|\/)(\.terraform|node_modules|cdktf\.out|\.git)(\/|$)/;
const TERRAFORM_FILE = /\.tf(\.json)?$/;

/** Defaults every project gets when .plangate.yml does not say otherwise. */
export function defaultProject(dir: string, engine: ProjectConfig["engine"]): ProjectConfig {
  return {
    name: dir,
    dir,
    engine,
    workspace: "default",
    autoplan: { enabled: true },
    apply: "on_merge",
    depends_on: [],
    approvals: { required: 1, teams: [], users: [] },
    env: [],
  };
}

/**
 * Without a config file: every directory holding terraform files, and every
 * directory with a cdktf.json, is a project, except directories inside a
 * cdktf program and directories other projects use as local modules.
 */
export function discoverProjects(files: string[], moduleDirs: Set<string>): ProjectConfig[] {
  const visible = files.filter((f) => !IGNORED.test(f));
  const cdktfDirs = [...new Set(visible.filter((f) => path.posix.basename(f) === "cdktf.json").map((f) => path.posix.dirname(f)))];
  const insideCdktf = (dir: string) => cdktfDirs.some((c) => c === "." || dir === c || dir.startsWith(`${c}/`));
  const terraformDirs = new Set(visible.filter((f) => TERRAFORM_FILE.test(f)).map((f) => path.posix.dirname(f)));
  const projects = [...terraformDirs].filter((d) => !insideCdktf(d) && !moduleDirs.has(d)).map((d) => defaultProject(d, "terraform"));
  projects.push(...cdktfDirs.map((d) => defaultProject(d, "cdktf")));
  return projects.sort((a, b) => (a.dir < b.dir ? -1 : 1));
}
