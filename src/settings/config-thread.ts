import { parentPort } from "node:worker_threads";
import { loadRepoConfig } from "./load-repo-config.js";
import type { EngineNames } from "./repo-config.js";

/** The config reader's thread (see readRepoConfig): reads the one `.plangate.yml` it is sent and answers with the result. */
parentPort!.once("message", ({ text, engines }: { text: string; engines: EngineNames }) => {
  parentPort!.postMessage(loadRepoConfig(text, engines));
});
