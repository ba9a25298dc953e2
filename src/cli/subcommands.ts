/**
 * The first word of every command `plangate` accepts (bin/plangate.js).
 * plangate.ts dispatches on exactly these (the compiler checks both ways),
 * and test/unit/deploy-manifests.test.ts checks the deploy files' commands
 * against them.
 */
export const SUBCOMMANDS = ["start", "worker", "plan", "policy", "migrate", "audit", "drift"] as const;

export type Subcommand = (typeof SUBCOMMANDS)[number];

export function isSubcommand(word: string | undefined): word is Subcommand {
  return (SUBCOMMANDS as readonly (string | undefined)[]).includes(word);
}
