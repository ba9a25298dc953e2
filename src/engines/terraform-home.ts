import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export interface TerraformHome {
  cliConfigFile: string;
  pluginCacheDir: string;
}

/**
 * Hands each concurrent job slot of this process its own terraform CLI config
 * and plugin cache (terraform's cache is not safe for concurrent writers).
 */
export class TerraformHomes {
  private readonly free: number[] = [];
  private next = 0;
  constructor(private readonly root: string) {}

  async acquire(): Promise<{ home: TerraformHome; release: () => void }> {
    const slot = this.free.pop() ?? this.next++;
    const dir = path.join(this.root, `slot-${slot}`);
    const home = { cliConfigFile: path.join(dir, "terraformrc"), pluginCacheDir: path.join(dir, "plugin-cache") };
    await mkdir(home.pluginCacheDir, { recursive: true });
    await writeFile(home.cliConfigFile, `plugin_cache_dir = ${JSON.stringify(home.pluginCacheDir)}\ndisable_checkpoint = true\n`);
    return { home, release: () => this.free.push(slot) };
  }
}
