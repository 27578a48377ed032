import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { githubSignature, sharedTokenEquals, verifyGiteaSignature, verifyGithubSignature } from "./signatures.js";

const body = Buffer.from('{"ref":"refs/heads/main"}');
// GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
const GITHUB_EXAMPLE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

describe("webhook signatures", () => {
  it("accepts GitHub's documented example signature", () => {
    expect(verifyGithubSignature("It's a Secret to Everybody", Buffer.from("Hello, World!"), GITHUB_EXAMPLE)).toBe(true);
  });

  it("checks X-Hub-Signature-256 against the raw body", () => {
    const sig = githubSignature("s3cret", body);
    expect(verifyGithubSignature("s3cret", body, sig)).toBe(true);
    expect(verifyGithubSignature("s3cret", body, sig.toUpperCase().replace("SHA256=", "sha256="))).toBe(true);
    expect(verifyGithubSignature("other", body, sig)).toBe(false);
    expect(verifyGithubSignature("s3cret", Buffer.from(`${body.toString()} `), sig)).toBe(false);
    expect(verifyGithubSignature("s3cret", body, sig.slice("sha256=".length))).toBe(false);
    expect(verifyGithubSignature("s3cret", body, "sha256=abc")).toBe(false);
    expect(verifyGithubSignature("s3cret", body, undefined)).toBe(false);
  });

  it("checks X-Gitea-Signature (hex, no prefix)", () => {
    const hex = createHmac("sha256", "k").update(body).digest("hex");
    expect(verifyGiteaSignature("k", body, hex)).toBe(true);
    expect(verifyGiteaSignature("k", body, `sha256=${hex}`)).toBe(false);
    expect(verifyGiteaSignature("x", body, hex)).toBe(false);
    expect(verifyGiteaSignature("k", body, undefined)).toBe(false);
  });

  it("compares GitLab tokens whatever their lengths", () => {
    expect(sharedTokenEquals("token-1", "token-1")).toBe(true);
    expect(sharedTokenEquals("token-1", "token-2")).toBe(false);
    expect(sharedTokenEquals("token-1", "token-1-and-more")).toBe(false);
    expect(sharedTokenEquals("token-1", "")).toBe(false);
    expect(sharedTokenEquals("token-1", undefined)).toBe(false);
  });
});
