import fc from "fast-check";
import { parseComment } from "../../src/commands/parse-command.js";
import { commandProblemText } from "../../src/render/command-problem.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

describe("comment command parser", () => {
  test.each([
    ["/plan", { command: "plan", selector: { all: false } }],
    ["/plan --all", { command: "plan", selector: { all: true } }],
    ["/plan -p network", { command: "plan", selector: { all: false, project: "network" } }],
    ["/plan --project=app/dev -w staging", { command: "plan", selector: { all: false, project: "app/dev", workspace: "staging" } }],
    ["/plan -d infra/network/", { command: "plan", selector: { all: false, dir: "infra/network" } }],
    ["/apply -p network", { command: "apply", selector: { all: false, project: "network" } }],
    ["/unlock", { command: "unlock", selector: { all: false } }],
    ["  /help  \nsecond line /apply", { command: "help", selector: { all: false } }],
  ])("%j", (body, expected) => {
    expect(parseComment(body)).toEqual({ kind: "command", ...expected });
  });

  test.each([
    ["/plan --bogus", "unknown flag --bogus"],
    ["/plan extra", "unexpected argument extra"],
    ["/plan -p", "-p needs a value"],
    ["/plan -p -w x", "-p needs a value"],
    ["/plan -p a -p b", "-p is given twice"],
    ["/plan -d ../../etc", 'dir "../../etc" must be relative and inside the repository'],
    ["/plan -d /etc", 'dir "/etc" must be relative and inside the repository'],
    ["/plan -p 'a;rm'", `project "'a;rm'" may hold only letters, digits, ".", "_", "-" and "/"`],
    ["/plan -w $(id)", 'workspace "$(id)" may hold only letters, digits, ".", "_" and "-"'],
    ["/apply --all", "--all applies to /plan only"],
    ["/plan --all -p x", "--all cannot be combined with -p or -d"],
    ["/unlock -p x", "/unlock takes no flags"],
    ["/help me", "unexpected argument me"],
    ["/plan --all=yes", "--all takes no value"],
  ])("%j is refused: %s", (body, message) => {
    const parsed = parseComment(body);
    expect(parsed).toMatchObject({ kind: "invalid", command: body.slice(1).split(" ")[0] });
    expect(parsed.kind === "invalid" && commandProblemText(t, parsed.problem)).toBe(message);
  });

  test.each(["", "plan", "please /plan", "/planet", "/applyall", "> /plan", "`/plan`", "\n/plan"])("%j is not a command", (body) => {
    expect(parseComment(body)).toEqual({ kind: "none" });
  });

  test("no input crashes it, and every accepted value is plain", () => {
    const token = fc.oneof(fc.constantFrom("-p", "-d", "-w", "--all", "--project", "--dir=x", "--workspace=", "-", "--", "/plan"), fc.string({ maxLength: 12 }));
    const body = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(fc.constantFrom("/plan", "/apply", "/unlock", "/help"), fc.array(token, { maxLength: 8 })).map(([c, t]) => [c, ...t].join(" ")),
    );
    fc.assert(
      fc.property(body, (text) => {
        const parsed = parseComment(text);
        expect(["none", "invalid", "command"]).toContain(parsed.kind);
        if (parsed.kind === "command") {
          for (const value of [parsed.selector.project, parsed.selector.dir, parsed.selector.workspace]) {
            if (value !== undefined) expect(value).toMatch(/^[A-Za-z0-9._/-]+$/);
          }
          if (parsed.selector.dir) expect(parsed.selector.dir.split("/")).not.toContain("..");
        }
      }),
      { numRuns: 5000 },
    );
  });

  test("/override takes a policy's name and a reason, the rest of the first line", () => {
    expect(parseComment("/override no-public-buckets the bucket is a public website\nmore text")).toEqual({
      kind: "command",
      command: "override",
      selector: { all: false },
      override: { policy: "no-public-buckets", reason: "the bucket is a public website" },
    });
    expect(parseComment("/override big-destroy " + "x".repeat(900))).toMatchObject({ override: { reason: "x".repeat(500) } });
  });

  test.each([
    ["/override", { kind: "override-needs-policy" }],
    ["/override no-public-buckets", { kind: "override-needs-reason" }],
    ["/override no-public-buckets   ", { kind: "override-needs-reason" }],
    ["/override @security/team because", { kind: "bad-policy-name", value: "@security/team" }],
  ])("%j is refused: %j", (body, problem) => {
    expect(parseComment(body)).toEqual({ kind: "invalid", command: "override", problem });
  });
});

