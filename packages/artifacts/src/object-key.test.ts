import { describe, expect, it } from "vitest";
import { bucketNameProblem, objectKeyProblem } from "./object-key.js";

describe("deploy target rules", () => {
  it("accepts S3 bucket names and refuses the rest", () => {
    expect(bucketNameProblem("sluice-example-site")).toBeUndefined();
    expect(bucketNameProblem("a.b-c")).toBeUndefined();
    for (const bad of ["", "ab", "Site", "a_b", "-ab", "ab-", "a..b", "a.-b", "192.168.1.1", "x".repeat(64), "a/b"]) {
      expect(bucketNameProblem(bad), bad).toBeDefined();
    }
  });

  it("refuses navigation, leading slashes, control characters and long keys", () => {
    expect(objectKeyProblem("site/v1/index.html", { prefix: false })).toBeUndefined();
    expect(objectKeyProblem("site/v1/", { prefix: true })).toBeUndefined();
    expect(objectKeyProblem("", { prefix: true })).toBeUndefined();
    expect(objectKeyProblem("", { prefix: false })).toBe("is required");
    expect(objectKeyProblem("../x", { prefix: true })).toContain('".." segment');
    expect(objectKeyProblem("a/../x", { prefix: false })).toContain('".." segment');
    expect(objectKeyProblem("a/..", { prefix: true })).toContain('".." segment');
    expect(objectKeyProblem("a/./x", { prefix: false })).toContain('"." segment');
    expect(objectKeyProblem("/site", { prefix: true })).toContain('must not start with "/"');
    expect(objectKeyProblem("a//b", { prefix: true })).toContain("empty segment");
    expect(objectKeyProblem("site/", { prefix: false })).toContain("empty segment");
    expect(objectKeyProblem("a\u0000b", { prefix: false })).toBe("must not contain control characters");
    expect(objectKeyProblem("a\nb", { prefix: false })).toBe("must not contain control characters");
    expect(objectKeyProblem("k".repeat(1025), { prefix: false })).toBe("must be at most 1024 bytes");
    expect(objectKeyProblem("é".repeat(513), { prefix: false })).toBe("must be at most 1024 bytes");
  });
});
