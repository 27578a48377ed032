import { describe, expect, it } from "vitest";
import { pinsFor } from "./event-rules.js";
import { requestToken } from "./starter.js";

describe("pinsFor", () => {
  it("pins the sources that read an upstream's repository and branch, however the URL ends", () => {
    const upstream = [{ actionName: "Up", repositoryUrl: "https://git.example/lib.git", branch: "main", commitId: "abc1234" }];
    const sources = [
      { actionName: "Lib", repositoryUrl: "https://git.example/lib/", branch: "main" },
      { actionName: "LibRelease", repositoryUrl: "https://git.example/lib.git", branch: "release" },
      { actionName: "App", repositoryUrl: "https://git.example/app.git", branch: "main" },
    ];
    expect(pinsFor(sources, upstream)).toEqual([{ actionName: "Lib", commitId: "abc1234" }]);
  });
});

describe("requestToken", () => {
  it("is a valid clientRequestToken, the same for the same occasion only", () => {
    const token = requestToken("schedule:p/nightly:1700000000000");
    expect(token).toMatch(/^[a-zA-Z0-9-]{1,128}$/);
    expect(requestToken("schedule:p/nightly:1700000000000")).toBe(token);
    expect(requestToken("schedule:p/nightly:1700000060000")).not.toBe(token);
  });
});
