import { dialProblems } from "../../src/sandbox/egress/dial-problems.js";

describe("failed direct connections in a program's output", () => {
  test("found when terraform wrapped the provider's error across lines", () => {
    // As terraform printed the AWS provider's failed AssumeRoleWithWebIdentity call (80 columns).
    const output = [
      "Error: failed to refresh cached credentials, failed to retrieve credentials,",
      "operation error STS: AssumeRoleWithWebIdentity, exceeded maximum number of",
      "attempts, 3, https response error StatusCode: 0, RequestID: , request send",
      'failed, Post "http://127.0.0.1:34291/": dial tcp 127.0.0.1:34291: connect:',
      "connection refused",
    ].join("\n");
    expect(dialProblems(output, [])).toEqual([
      "egress refused: 127.0.0.1:34291 (loopback: the sandbox has a network of its own, and the host's loopback is not in it); PLANGATE_SANDBOX_EGRESS_ALLOW=127.0.0.1:34291 would open it",
    ]);
  });

  test("a wrapped failed lookup is found too; a forwarded destination is not a problem", () => {
    expect(dialProblems('Get "https://state.example.com/": dial\ntcp: lookup state.example.com on 127.0.0.53:53', [])).toHaveLength(1);
    expect(dialProblems("dial tcp 127.0.0.1:5432: connect:\nconnection refused", [{ host: "127.0.0.1", port: 5432, target: "127.0.0.1:5432" }])).toEqual([]);
  });
});
