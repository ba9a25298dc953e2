import { cdktf } from "./cdktf-engine.js";
import type { Engine } from "./engine.js";
import { terraform } from "./terraform-engine.js";
import { tofu } from "./tofu-engine.js";

/** The engines plangate knows, by their name in `.plangate.yml`; the first is a project's default. */
export class EngineRegistry {
  private readonly byName: Map<string, Engine>;
  constructor(engines: Engine[]) {
    this.byName = new Map(engines.map((e) => [e.name, e]));
  }

  /** Every engine's name, the default first: what `engine:` accepts. */
  get names(): [string, ...string[]] {
    return [...this.byName.keys()] as [string, ...string[]];
  }

  get all(): Engine[] {
    return [...this.byName.values()];
  }

  /** The engine of a project's `engine` value (validated against `names` when the config was read). */
  named(name: string): Engine {
    const engine = this.byName.get(name);
    if (!engine) throw new Error(`no engine named ${JSON.stringify(name)} (plangate knows ${this.names.join(", ")})`);
    return engine;
  }

  /** Folders any engine leaves in a project (its tooling's working data): never a project, never copied. */
  get toolingDirs(): string[] {
    return [...new Set(this.all.flatMap((e) => e.toolingDirs))];
  }

  /** This registry with more engines (a test's, a plugin's). */
  with(...engines: Engine[]): EngineRegistry {
    return new EngineRegistry([...this.all, ...engines]);
  }
}

/** The built-in engines. Adding one: its module, and a line here. */
export const ENGINES = new EngineRegistry([terraform, tofu, cdktf]);
