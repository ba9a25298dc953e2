// Runs the slowest test files first, so that no long file starts when the other worker is nearly done.
// Jest's own sequencer does that only with durations from an earlier run on this machine (its cache); a clean
// clone (CI) has none and would go by file size, which says little here (a short file can wait on terraform for
// a minute). Files without an earlier run take their duration from durations.json, measured on the CI machine;
// files in neither run first. To refresh the table after a full run with `--json --outputFile=/tmp/run.json`:
//   node -e 'const r=require("/tmp/run.json");console.log(JSON.stringify(Object.fromEntries(r.testResults.map(t=>[require("path").relative(process.cwd(),t.name),Math.round((t.endTime-t.startTime)/1000)]).sort(([,a],[,b])=>b-a)),null,1))' > test/support/durations.json
import { readFileSync } from "node:fs";
import path from "node:path";
import JestSequencer from "@jest/test-sequencer";

const Sequencer = JestSequencer.default ?? JestSequencer;
/** Seconds per test file, by its path from the repository's root. */
const measured = JSON.parse(readFileSync(new URL("./durations.json", import.meta.url), "utf8"));

export default class SlowestFirst extends Sequencer {
  time(test) {
    return super.time(test) ?? measured[path.relative(test.context.config.rootDir, test.path)];
  }
}
