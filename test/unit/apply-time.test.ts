import { parsePlanChanges } from "../../src/plans/changes.js";

const localExec = (command: unknown) => ({ type: "local-exec", expressions: { command } });
const rc = (address: string, actions: string[], mode = "managed") => ({ address, mode, type: "terraform_data", change: { actions, before: null, after: {} } });

describe("provisioners from a plan's configuration", () => {
  const configuration = {
    root_module: {
      resources: [
        { address: "terraform_data.root", mode: "managed", provisioners: [localExec({ constant_value: "echo root" })] },
        { address: "terraform_data.untouched", mode: "managed", provisioners: [localExec({ constant_value: "echo never" })] },
      ],
      module_calls: {
        outer: {
          module: {
            module_calls: {
              inner: { module: { resources: [{ address: "terraform_data.deep", mode: "managed", provisioners: [localExec({ references: ["var.x"] }), { type: "file", expressions: { source: { constant_value: "a.sh" }, destination: { constant_value: "/tmp/a.sh" } } }] }] } },
            },
          },
        },
      },
    },
  };

  test("instances in keyed modules (keys holding dots and brackets) map to their block; updates and untouched blocks run nothing", () => {
    const plan = {
      configuration,
      resource_changes: [
        rc("terraform_data.root", ["delete", "create"]),
        rc("terraform_data.untouched", ["update"]),
        rc('module.outer["a.b[1]"].module.inner[0].terraform_data.deep', ["create"]),
        rc('module.outer["c"].module.inner[0].terraform_data.deep', ["delete"]),
      ],
    };
    expect(parsePlanChanges(plan).applyTime).toEqual([
      { resource: "terraform_data.root", instances: [{ address: "terraform_data.root", action: "replace" }], provisioners: [{ type: "local-exec", arguments: [{ name: "command", value: "echo root" }] }] },
      {
        resource: "module.outer.module.inner.terraform_data.deep",
        instances: [
          { address: 'module.outer["a.b[1]"].module.inner[0].terraform_data.deep', action: "create" },
          { address: 'module.outer["c"].module.inner[0].terraform_data.deep', action: "delete" },
        ],
        provisioners: [
          { type: "local-exec", arguments: [{ name: "command", references: ["var.x"] }] },
          { type: "file", arguments: [{ name: "destination", value: "/tmp/a.sh" }, { name: "source", value: "a.sh" }] },
        ],
      },
    ]);
  });

  test("a plan without provisioners carries no applyTime; a constant equal to a sensitive value is hidden", () => {
    expect(parsePlanChanges({ resource_changes: [rc("terraform_data.root", ["create"])] }).applyTime).toBeUndefined();
    const secret = { ...rc("terraform_data.root", ["create"]), change: { actions: ["create"], after: { input: "hunter2-secret" }, after_sensitive: { input: true } } };
    const plan = { configuration: { root_module: { resources: [{ address: "terraform_data.root", mode: "managed", provisioners: [localExec({ constant_value: "echo hunter2-secret" })] }] } }, resource_changes: [secret] };
    expect(JSON.stringify(parsePlanChanges(plan).applyTime)).not.toContain("hunter2-secret");
  });
});
