import type { ProjectConfig } from "../settings/repo-config.js";

/** Folders no engine's project is in: installed packages, git's own, and the engines' tooling folders. */
const ALWAYS_IGNORED = ["node_modules", ".git"];
const escape = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const ignoring = (engines: ProjectFinder[]) =>
  new RegExp(`(^|/)(${[...ALWAYS_IGNORED, ...engines.flatMap((e) => e.toolingDirs)].map(escape).join("|")})(/|$)`);

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

/** What discovery needs of an engine (src/engines/engine.ts): its name and which folders it claims. */
export interface ProjectFinder {
  name: string;
  findProjects(files: string[]): string[];
  /** A project's folder owns every folder below it. */
  ownsSubtree: boolean;
  /** Folders the engine's tool leaves in a project: never a project. */
  toolingDirs: readonly string[];
}

/**
 * Without a config file: every folder an engine claims is a project of that
 * engine (the first engine to claim a folder wins), except folders inside a
 * folder that owns its subtree (a cdktf program) and folders other projects
 * use as local modules.
 */
export function discoverProjects(files: string[], moduleDirs: Set<string>, engines: ProjectFinder[]): ProjectConfig[] {
  const ignored = ignoring(engines);
  const visible = files.filter((f) => !ignored.test(f));
  const owners = engines.filter((e) => e.ownsSubtree).flatMap((e) => e.findProjects(visible));
  const insideOwner = (dir: string) => owners.some((o) => o === dir || o === "." || dir.startsWith(`${o}/`));
  const claimed = new Map<string, string>();
  for (const engine of engines) {
    for (const dir of engine.findProjects(visible)) {
      if (claimed.has(dir) || (!engine.ownsSubtree && (moduleDirs.has(dir) || insideOwner(dir)))) continue;
      claimed.set(dir, engine.name);
    }
  }
  return [...claimed].map(([dir, engine]) => defaultProject(dir, engine)).sort((a, b) => (a.dir < b.dir ? -1 : 1));
}
