import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { matchGitTrigger } from "./match.js";
import type { GitFilterCriteriaLike, GitTriggerFiltersLike } from "./match.js";

const c = (includes: string[], excludes: string[] = []): GitFilterCriteriaLike => ({ includes, excludes });
const push = (...entries: GitTriggerFiltersLike["push"]): GitTriggerFiltersLike => ({ push: entries, pullRequest: [] });

describe("matchGitTrigger", () => {
  it("push: branches and filePaths are AND'ed within one entry", () => {
    const f = push({ branches: c(["main"]), filePaths: c(["src/**"]) });
    expect(matchGitTrigger(f, { kind: "push", branch: "main", commit: "x", changedPaths: ["src/a.ts"] })).toEqual({
      matched: true,
      reason: 'push[0] matched: branch "main" matches "main"; file "src/a.ts" matches "src/**"',
    });
    const off = matchGitTrigger(f, { kind: "push", branch: "main", commit: "x", changedPaths: ["docs/a.md"] });
    expect(off.matched).toBe(false);
    expect(off.reason).toBe('no filter matched: push[0]: no changed file passes filePaths (changed: "docs/a.md")');
    expect(matchGitTrigger(f, { kind: "push", branch: "dev", commit: "x", changedPaths: ["src/a.ts"] }).reason).toMatch(/push\[0\]: branch "dev" matches no include/);
  });

  it("push: entries are OR'ed and the reason lists each entry that failed", () => {
    const f = push({ branches: c(["main"]) }, { branches: c(["release/*"], ["release/old"]) });
    expect(matchGitTrigger(f, { kind: "push", branch: "release/2", commit: "x" }).reason).toMatch(/^push\[1\] matched/);
    const r = matchGitTrigger(f, { kind: "push", branch: "release/old", commit: "x" });
    expect(r.matched).toBe(false);
    expect(r.reason).toContain("push[0]: branch");
    expect(r.reason).toContain('push[1]: branch "release/old" is excluded by "release/old"');
  });

  it("push: a tags entry matches tag pushes only, a branches entry branch pushes only", () => {
    const f = push({ tags: c(["v*"]) });
    expect(matchGitTrigger(f, { kind: "push", tag: "v1.0", commit: "x" }).matched).toBe(true);
    expect(matchGitTrigger(f, { kind: "push", tag: "nightly", commit: "x" }).matched).toBe(false);
    expect(matchGitTrigger(f, { kind: "push", branch: "main", commit: "x" }).reason).toMatch(/filters tags, but this push is to a branch/);
    expect(matchGitTrigger(push({ branches: c(["**"]) }), { kind: "push", tag: "v1", commit: "x" }).reason).toMatch(/this push is of a tag/);
  });

  it("filePaths: unknown changed paths let the push through and say so", () => {
    const r = matchGitTrigger(push({ branches: c(["main"]), filePaths: c(["src/**"]) }), { kind: "push", branch: "main", commit: "x" });
    expect(r.matched).toBe(true);
    expect(r.reason).toMatch(/changed paths are not known/);
  });

  it("pull requests: events and target branch; push entries do not apply", () => {
    const f: GitTriggerFiltersLike = {
      push: [{ branches: c(["**"]) }],
      pullRequest: [{ events: ["OPEN", "UPDATED"], branches: c(["main"]), filePaths: c([], ["docs/**"]) }],
    };
    const pr = { kind: "pullRequest", sourceBranch: "feature/x", targetBranch: "main", commit: "x" } as const;
    expect(matchGitTrigger(f, { ...pr, event: "OPEN", changedPaths: ["src/a"] }).matched).toBe(true);
    expect(matchGitTrigger(f, { ...pr, event: "CLOSED", changedPaths: ["src/a"] }).reason).toMatch(/event CLOSED is not one of OPEN, UPDATED/);
    expect(matchGitTrigger(f, { ...pr, event: "OPEN", changedPaths: ["docs/a"] }).matched).toBe(false);
    expect(matchGitTrigger(f, { ...pr, targetBranch: "dev", event: "OPEN" }).reason).toMatch(/target branch "dev"/);
    expect(matchGitTrigger(push({ branches: c(["**"]) }), { ...pr, event: "OPEN" })).toEqual({ matched: false, reason: "the trigger has no pullRequest filters" });
  });

  it("an exclude wins over any include", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z/]{1,12}$/), (branch) => {
        const f = push({ branches: c(["**", branch.replace(/\//g, "\\/")], [branch]) });
        expect(matchGitTrigger(f, { kind: "push", branch, commit: "x" }).matched).toBe(false);
      }),
    );
  });

  it("a push matches iff some entry matches on its own (OR across entries)", () => {
    const criteria = fc.constantFrom(c(["main"]), c(["release/*"]), c(["**"], ["main"]), c([], ["dev"]));
    const entry = fc.record({ branches: criteria });
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 3 }), fc.constantFrom("main", "dev", "release/1", "x/y"), (entries, branch) => {
        const event = { kind: "push", branch, commit: "x" } as const;
        const each = entries.map((e) => matchGitTrigger(push(e), event).matched);
        expect(matchGitTrigger(push(...entries), event).matched).toBe(each.includes(true));
      }),
    );
  });
});
