import { describe, expect, it } from "vitest";
import { gitHostEnv, gitProcessEnv } from "./git-env.js";

describe("gitHostEnv", () => {
  it("keeps PATH and the network settings, and drops GIT_*, HOME and everything else", () => {
    const env = {
      PATH: "/opt/bin:/usr/bin",
      HTTPS_PROXY: "http://proxy:3128",
      SSL_CERT_FILE: "/etc/ca.pem",
      HOME: "/home/sluice",
      XDG_CONFIG_HOME: "/home/sluice/.config",
      GIT_DIR: "/elsewhere/.git",
      GIT_CONFIG_PARAMETERS: "'credential.helper'='store'",
      GIT_CONFIG_GLOBAL: "/home/sluice/.gitconfig",
      SLUICE_SERVICE_TOKEN: "secret",
      UNSET: undefined,
    };
    expect(gitHostEnv(env)).toEqual({ PATH: "/opt/bin:/usr/bin", HTTPS_PROXY: "http://proxy:3128", SSL_CERT_FILE: "/etc/ca.pem" });
  });

  it("gives a PATH when the environment has none", () => {
    expect(gitHostEnv({})).toEqual({ PATH: "/usr/local/bin:/usr/bin:/bin" });
  });
});

describe("gitProcessEnv", () => {
  it("adds no prompt, batch-mode ssh and the C locale to the base", () => {
    expect(gitProcessEnv({ PATH: "/usr/bin", LC_ALL: "de_DE.UTF-8" })).toEqual({
      PATH: "/usr/bin",
      GIT_TERMINAL_PROMPT: "0",
      GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
      LC_ALL: "C",
    });
  });

  it("keeps an ssh command the base chose, and always disables the prompt", () => {
    const env = gitProcessEnv({ PATH: "/usr/bin", GIT_SSH_COMMAND: "ssh -i /keys/deploy -o BatchMode=yes", GIT_TERMINAL_PROMPT: "1" });
    expect(env["GIT_SSH_COMMAND"]).toBe("ssh -i /keys/deploy -o BatchMode=yes");
    expect(env["GIT_TERMINAL_PROMPT"]).toBe("0");
  });
});
