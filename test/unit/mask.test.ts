import { createMasker, maskDeep, projectMasker } from "../../src/plans/mask.js";

describe("masking", () => {
  test("secret-looking env values and operator patterns become ***; short values are left alone", () => {
    const mask = projectMasker({ DB_PASSWORD: "hunter2-pw", API_TOKEN: "tok_123456", REGION: "eu-west-1", SHORT_KEY: "ab" }, [/AKIA[0-9A-Z]{16}/]);
    expect(mask("pw=hunter2-pw token=tok_123456 region=eu-west-1 key=AKIAABCDEFGHIJKLMNOP ab")).toBe("pw=*** token=*** region=eu-west-1 key=*** ab");
  });

  test("the longest secret is masked first, so one containing another leaves nothing behind", () => {
    expect(createMasker(["secret", "secret-extended"])("x secret-extended y")).toBe("x *** y");
  });

  test("every string inside plan changes", () => {
    const mask = createMasker(["s3cr3t"]);
    expect(maskDeep({ a: ["s3cr3t", 1, { b: "pre-s3cr3t-post" }], c: null }, mask)).toEqual({ a: ["***", 1, { b: "pre-***-post" }], c: null });
  });
});
