import { describe, expect, it } from "vitest";
import { normaliseRepositoryUrl } from "./repository-url.js";

describe("normaliseRepositoryUrl", () => {
  it("makes the forms of one repository equal", () => {
    const forms = [
      "https://github.com/acme/web",
      "https://github.com/acme/web.git",
      "https://github.com/acme/web/",
      "https://user:p%40ss@GitHub.COM/acme/web.git",
      "https://github.com:443/acme/web",
      "http://github.com/acme/web",
      "ssh://git@github.com/acme/web.git",
      "git@github.com:acme/web.git",
      " https://github.com/acme/web.git/ ",
    ];
    for (const f of forms) expect(normaliseRepositoryUrl(f), f).toBe("github.com/acme/web");
  });

  it("keeps what tells repositories apart: path case, other ports, other hosts", () => {
    expect(normaliseRepositoryUrl("https://gitlab.example.com/Group/Web.git")).toBe("gitlab.example.com/Group/Web");
    expect(normaliseRepositoryUrl("https://git.example.com:8443/a/b")).toBe("git.example.com:8443/a/b");
    expect(normaliseRepositoryUrl("https://github.com/acme/web2")).not.toBe(normaliseRepositoryUrl("https://github.com/acme/web"));
    expect(normaliseRepositoryUrl("file:///srv/git/web.git")).toBe("/srv/git/web");
  });

  it("gives undefined for what is no URL", () => {
    expect(normaliseRepositoryUrl("")).toBeUndefined();
    expect(normaliseRepositoryUrl("not a url")).toBeUndefined();
  });
});
