/**
 * Jest runs the TypeScript sources directly as ESM (ts-jest); see FIELD-NOTES on Jest with ESM.
 * PLANGATE_TEST_TIER=unit (npm run test:unit): the pure tests only, without Postgres, git or terraform.
 */
const unit = process.env.PLANGATE_TEST_TIER === "unit";
export default {
  testEnvironment: "node",
  roots: [unit ? "<rootDir>/test/unit" : "<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  extensionsToTreatAsEsm: [".ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { useESM: true, tsconfig: "tsconfig.test.json", diagnostics: false }],
  },
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  ...(unit ? {} : { globalSetup: "<rootDir>/test/support/global-setup.mjs", globalTeardown: "<rootDir>/test/support/global-teardown.mjs" }),
  testTimeout: 120000,
  maxWorkers: 2,
};
