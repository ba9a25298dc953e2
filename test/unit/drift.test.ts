import { ENGINES } from "../../src/engines/registry.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import { isDriftDue } from "../../src/worker/drift/drift-scan.js";

describe("drift schedules", () => {
  test("a check is due when a scheduled time passed since the last one, or none was made", () => {
    const now = new Date("2026-12-01T07:00:00Z");
    expect(isDriftDue("0 6 * * *", undefined, now)).toBe(true);
    expect(isDriftDue("0 6 * * *", new Date("2026-12-01T05:59:00Z"), now)).toBe(true);
    expect(isDriftDue("0 6 * * *", new Date("2026-12-01T06:00:30Z"), now)).toBe(false);
    expect(isDriftDue("*/15 * * * *", new Date("2026-12-01T06:50:00Z"), now)).toBe(true);
  });

  test("drift.schedule is validated as cron where it is written, per project and in defaults", () => {
    const ok = loadRepoConfig('version: 1\nprojects:\n  - dir: infra\n    drift: { schedule: "0 6 * * *" }\ndefaults:\n  drift: { schedule: "30 5 * * 1-5" }\n', ENGINES.names);
    expect(ok.ok && ok.config.projects[0]!.drift).toEqual({ schedule: "0 6 * * *" });
    expect(ok.ok && ok.config.defaults?.drift).toEqual({ schedule: "30 5 * * 1-5" });
    const bad = loadRepoConfig('version: 1\nprojects:\n  - dir: infra\n    drift: { schedule: "every morning" }\n', ENGINES.names);
    expect(bad).toEqual({ ok: false, problems: [expect.objectContaining({ line: 4, message: expect.stringContaining("projects[0].drift.schedule: must be a cron expression of five fields") })] });
  });
});
