import fc from "fast-check";
import { canonicalJson, writtenOut } from "../../src/plans/canonical.js";

describe("canonicalJson", () => {
  test("gives the written-out definition's text for any JSON value, index-like keys included", () => {
    // Keys mix plain words, digits ("10" before "9" when sorted as text) and unicode, at every depth.
    const key = fc.oneof(fc.string(), fc.constantFrom("10", "9", "0", "01", "a", "B", "é", "__proto__", "constructor"), fc.nat().map(String));
    const json = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: "small" }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string(), tie("array"), tie("object")),
      array: fc.array(tie("value"), { maxLength: 5 }),
      object: fc.dictionary(key, tie("value"), { maxKeys: 6 }),
    })).value;
    fc.assert(fc.property(json, (value) => canonicalJson(value) === writtenOut(value)), { numRuns: 2000 });
  });

  test("sorts keys at every depth, array-index keys as text", () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ 9: "nine", 10: "ten", x: 1 })).toBe('{"10":"ten","9":"nine","x":1}');
    expect(canonicalJson(undefined)).toBe("null");
    // JSON.parse makes "__proto__" an own key: it is content like any other.
    expect(canonicalJson(JSON.parse('{"z":1,"__proto__":{"x":2}}'))).toBe('{"__proto__":{"x":2},"z":1}');
  });
});
