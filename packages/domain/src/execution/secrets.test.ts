import { describe, expect, it } from "vitest";
import { MAX_OUTPUT_VARIABLES_BYTES } from "../limits.js";
import { createMasker, maskDeep, maskUserinfo, secretForms, stripUserinfo } from "./secrets.js";
import { Sim, actionSpec, pipelineSpec, sourceSpec } from "./testing.js";
import { actionExecutionDetails, executionView, pipelineStateView } from "./views.js";

const CANARY = "c4nary s3cret/+?&=";

describe("secret forms and the masker", () => {
  it("masks the raw value, its base64 (padded, unpadded, URL-safe) and its URL-encoded forms", () => {
    const b64 = Buffer.from(CANARY, "utf8").toString("base64");
    const forms = [CANARY, b64, b64.replace(/=+$/, ""), Buffer.from(CANARY).toString("base64url"), encodeURIComponent(CANARY), encodeURIComponent(CANARY).replace(/%20/g, "+")];
    expect(secretForms(CANARY)).toEqual(expect.arrayContaining(forms));
    const mask = createMasker([CANARY]);
    for (const form of forms) expect(mask(`before ${form} after`)).toBe("before **** after");
  });

  it("masks a secret that contains another one whole, and leaves text without secrets alone", () => {
    const mask = createMasker(["abcd", "xxabcdxx"]);
    expect(mask("[xxabcdxx] [abcd]")).toBe("[****] [****]");
    expect(createMasker([])("plain")).toBe("plain");
    expect(createMasker([""])("plain")).toBe("plain");
  });

  it("strips or masks URL userinfo wherever a URL appears", () => {
    expect(stripUserinfo("https://user:pa55@host.example/repo.git#main")).toBe("https://host.example/repo.git#main");
    expect(stripUserinfo("see ssh://git@host/r and file://u:p@localhost/tmp/r")).toBe("see ssh://host/r and file://localhost/tmp/r");
    expect(maskUserinfo("clone https://user:pa55@host/r failed")).toBe("clone https://****@host/r failed");
    expect(stripUserinfo("mail a@b.c, http://host/x?u=a@b")).toBe("mail a@b.c, http://host/x?u=a@b");
  });

  it("maskDeep masks every string of a view and keeps protobuf's own fields and other values", () => {
    const view = { $typeName: "x.v1.Y", a: `t ${CANARY}`, n: 3, big: 5n, list: [{ s: CANARY }], bytes: new Uint8Array([1]) };
    expect(maskDeep(view, createMasker([CANARY]))).toEqual({ $typeName: "x.v1.Y", a: "t ****", n: 3, big: 5n, list: [{ s: "****" }], bytes: new Uint8Array([1]) });
  });
});

describe("a job's result is scrubbed before it reaches the state", () => {
  const spec = pipelineSpec([
    ["Source", [sourceSpec("Src", "SrcOut")]],
    [
      "Build",
      [
        actionSpec("Compile", {
          inputArtifacts: ["SrcOut"],
          namespace: "Build",
          outputVariables: ["LEAK"],
          environmentVariables: [{ name: "TOKEN", value: CANARY, type: "SECRET" }],
        }),
      ],
    ],
  ]);

  it("masks a SECRET (and its encodings) in summaries, errors and output variables; the job still carries it", () => {
    const sim = new Sim(spec);
    sim.start("e1", { trigger: { triggerType: "PollForSourceChanges", triggerDetail: "https://bob:pa55w0rd@git.example/r.git#main" } });
    sim.succeed("Src", "e1", { outputArtifacts: [{ name: "SrcOut", artifactId: "a/SrcOut", bucket: "b", key: "k", sha256: "0", sizeBytes: 1 }] });
    const job = sim.job("Compile", "e1");
    // The runner needs the value itself.
    expect(job.environmentVariables).toEqual([{ name: "TOKEN", value: CANARY, type: "SECRET" }]);
    const b64 = Buffer.from(CANARY).toString("base64");
    sim.succeed("Compile", "e1", { summary: `printed ${CANARY} and ${b64}`, outputVariables: { LEAK: encodeURIComponent(CANARY) } });
    const state = JSON.stringify(sim.state.executions["e1"]);
    const events = JSON.stringify(sim.events);
    for (const text of [state, events]) {
      expect(text).not.toContain(CANARY);
      expect(text).not.toContain(b64);
      expect(text).not.toContain(encodeURIComponent(CANARY));
      expect(text).not.toContain("pa55w0rd");
    }
    const exec = sim.exec("e1");
    expect(exec.trigger.triggerDetail).toBe("https://git.example/r.git#main");
    expect(exec.variables["Build"]).toEqual({ LEAK: "****" });
    const views = JSON.stringify([
      pipelineStateView(sim.state, { created: 0, updated: 0 }),
      executionView(exec, "demo"),
      actionExecutionDetails([exec], () => spec),
    ], (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
    expect(views).not.toContain(CANARY);
    expect(views).toContain("printed **** and ****");
  });

  it("fails an action whose output variables exceed 122,880 bytes, naming the largest", () => {
    const sim = new Sim(spec);
    sim.start("e1");
    sim.succeed("Src", "e1", { outputArtifacts: [{ name: "SrcOut", artifactId: "a/SrcOut", bucket: "b", key: "k", sha256: "0", sizeBytes: 1 }] });
    // Just at the limit is fine ("LEAK" is 4 bytes of it).
    const atLimit = new Sim(spec);
    atLimit.start("e1");
    atLimit.succeed("Src", "e1", { outputArtifacts: [{ name: "SrcOut", artifactId: "a/SrcOut", bucket: "b", key: "k", sha256: "0", sizeBytes: 1 }] });
    atLimit.succeed("Compile", "e1", { outputVariables: { LEAK: "x".repeat(MAX_OUTPUT_VARIABLES_BYTES - 4) } });
    expect(atLimit.exec("e1").status).toBe("Succeeded");

    // Multi-byte characters count as bytes: 40,961 × "€" (3 bytes) is over.
    sim.succeed("Compile", "e1", { outputVariables: { LEAK: "€".repeat(40_960), OTHER: "y" } });
    const exec = sim.exec("e1");
    const run = exec.stages.find((s) => s.name === "Build")?.actions[0];
    expect(exec.status).toBe("Failed");
    expect(run?.status).toBe("Failed");
    expect(run?.errorDetails).toEqual({
      code: "JobFailed",
      message: `output variables are ${4 + 122_880 + 5 + 1} bytes, more than the 122880 allowed per action; the largest is "LEAK" (122884 bytes)`,
    });
    expect(run?.outputVariables).toBeUndefined();
    expect(exec.variables["Build"]).toBeUndefined();
  });
});
