import { onMergeGroup, type MergeGroupEvent } from "../../src/handlers/merge-group.js";
import { examplePayload } from "../support/webhooks.js";

const event = (action: string, headRef: string): MergeGroupEvent => {
  const payload = examplePayload<MergeGroupEvent>("merge_group", "checks_requested");
  return { ...payload, action, merge_group: { ...payload.merge_group, head_ref: headRef } };
};
const QUEUE_REF = `refs/heads/gh-readonly-queue/main/pr-104-${"9".repeat(40)}`;

describe("merge_group deliveries", () => {
  test("checks_requested queues the verification in the pull request's own queue, after its plans", () => {
    const decision = onMergeGroup(event("checks_requested", QUEUE_REF), "d-1");
    expect(decision.outcome).toBe("enqueued:merge-queue");
    expect(decision.jobs).toEqual([
      expect.objectContaining({ task: "merge-group", queueName: "pull:octo-org/octo-repo#104", jobKey: "merge-group:d-1", payload: expect.objectContaining({ headRef: QUEUE_REF, headSha: "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d" }) }),
    ]);
  });

  test("destroyed needs nothing, and a branch that is not a merge queue's is ignored", () => {
    expect(onMergeGroup(event("destroyed", QUEUE_REF), "d-2")).toMatchObject({ outcome: "ignored:action destroyed", jobs: [] });
    expect(onMergeGroup(event("checks_requested", "refs/heads/feature/pr-104"), "d-3")).toMatchObject({ outcome: "ignored:not a merge queue branch", jobs: [] });
  });
});
