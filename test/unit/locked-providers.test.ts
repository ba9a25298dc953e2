import { lockedProviders } from "../../src/engines/provider-cache.js";

/**
 * A shared provider cache is filled from a configuration generated out of a
 * PR's lock file (issue 21, row 13): only plain source addresses and exact
 * versions may come out of it; anything else means no shared cache.
 */
describe("lockedProviders", () => {
  test("takes terraform's own lock file apart", () => {
    const lock = `# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/hashicorp/aws" {
  version     = "5.100.0"
  constraints = "~> 5.0"
  hashes = [
    "h1:edXOJWE4ORX8Fm+dpVpICzMZJat4AX0VRCAy/xkcOc0=",
    "zh:0123",
  ]
}

provider "mirror.example.com:8443/acme/thing" {
  version = "1.2.3-beta.1"
}
`;
    expect(lockedProviders(lock)).toEqual([
      { source: "registry.terraform.io/hashicorp/aws", version: "5.100.0" },
      { source: "mirror.example.com:8443/acme/thing", version: "1.2.3-beta.1" },
    ]);
    expect(lockedProviders("# nothing locked yet\n")).toEqual([]);
  });

  test.each([
    ["a quote smuggled into the source", 'provider "registry.terraform.io/a/b\\" } evil" {\n  version = "1.0.0"\n}\n'],
    ["a source that is not host/namespace/type", 'provider "../../etc/passwd" {\n  version = "1.0.0"\n}\n'],
    ["a version range instead of a version", 'provider "registry.terraform.io/a/b" {\n  version = ">= 1.0"\n}\n'],
    ["a version with HCL in it", 'provider "registry.terraform.io/a/b" {\n  version = "1.0.0\\" } module \\"x"\n}\n'],
    ["no version", 'provider "registry.terraform.io/a/b" {\n  constraints = "1.0.0"\n}\n'],
    ["a block the pattern cannot take apart", 'provider "registry.terraform.io/a/b" { version = "1.0.0" } provider "registry.terraform.io/c/d" { version = "1.0.0" }\n'],
    ["a provider block nested in something else", 'provider "registry.terraform.io/a/b" {\n  version = "1.0.0"\n  provider "registry.terraform.io/c/d" {}\n}\n'],
  ])("%s: nothing is shared", (_, lock) => {
    expect(lockedProviders(lock)).toBeUndefined();
  });
});
