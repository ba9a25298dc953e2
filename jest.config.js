/**
 * Jest runs the TypeScript sources directly as ESM (ts-jest); see FIELD-NOTES on Jest with ESM.
 * PLANGATE_TEST_TIER=unit (npm run test:unit): the pure tests only, without Postgres, git or terraform.
 */
const unit = process.env.PLANGATE_TEST_TIER === "unit";
export default {
  // Jest's node environment; a worker's process ends as soon as it exits (see the file).
  testEnvironment: "<rootDir>/test/support/environment.mjs",
  roots: [unit ? "<rootDir>/test/unit" : "<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  extensionsToTreatAsEsm: [".ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { useESM: true, tsconfig: "tsconfig.test.json", diagnostics: false }],
  },
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  ...(unit ? {} : { globalSetup: "<rootDir>/test/support/global-setup.mjs", globalTeardown: "<rootDir>/test/support/global-teardown.mjs" }),
  // The slowest files first (test/support/sequencer.mjs): a long file started last would hold up the run.
  testSequencer: "<rootDir>/test/support/sequencer.mjs",
  testTimeout: 120000,
  // Three files at a time on 2 cores: many integration tests wait (retries, workers, GitHub's pacing) rather than
  // compute, and two workers left a fifth of the CPU idle (npm test 515 s with 2, 416 s with 3, 2026-12-06).
  maxWorkers: 3,
  // Each test file loads the app's modules afresh in its own VM context (ESM), and a worker's heap grows file after
  // file: a worker past this is replaced between files. A worker still exiting half a second after the run is
  // force-exited by Jest, and ending a process takes longer the larger it is (test/support/environment.mjs): at 1 GB
  // no worker was ever replaced and the last ones took 290-430 ms to end; at 700 MB, three replacements in a run,
  // 120-190 ms, and the same suite time (694 against 714 s, within the machine's spread).
  workerIdleMemoryLimit: "700MB",
};
