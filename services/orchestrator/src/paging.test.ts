import { describe, expect, it } from "vitest";
import { isDomainError } from "@sluice/domain";
import { decodeToken, encodeToken } from "./paging.js";

const isCursor = (v: unknown): v is { n: string } => typeof v === "object" && v !== null && typeof (v as { n?: unknown }).n === "string";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isDomainError(err) ? `${err.code} ${err.violations.map((v) => v.field).join(",")}` : "other";
  }
  return undefined;
}

describe("page tokens", () => {
  it("round-trip a cursor", () => {
    const token = encodeToken({ n: "my.pipeline@1" });
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeToken(token, "nextToken", isCursor)).toEqual({ n: "my.pipeline@1" });
  });

  it("refuse tokens this API did not issue, naming the field", () => {
    expect(codeOf(() => decodeToken("!!", "nextToken", isCursor))).toBe("InvalidNextTokenException nextToken");
    expect(codeOf(() => decodeToken(Buffer.from("not json").toString("base64url"), "nextToken", isCursor))).toBe("InvalidNextTokenException nextToken");
    expect(codeOf(() => decodeToken(encodeToken({ x: 1 }), "nextToken", isCursor))).toBe("InvalidNextTokenException nextToken");
    expect(codeOf(() => decodeToken("a".repeat(2049), "nextToken", isCursor))).toBe("InvalidNextTokenException nextToken");
  });
});
