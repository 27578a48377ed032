// A job worker's success with a continuation token (AWS PutJobSuccessResult.continuationToken):
// the action goes on with a follow-up job instead of ending.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TIMEOUT_GRACE_MS } from "./decide.js";
import { actionSpec, jobsOf, pipelineSpec, Sim, success } from "./testing.js";
import type { PipelineSpec } from "./types.js";

const customSpec = (): PipelineSpec =>
  pipelineSpec([
    [
      "Deploy",
      [
        actionSpec("Ship", {
          category: "Deploy",
          owner: "Custom",
          provider: "Rollout",
          builtIn: "Custom",
          commands: [],
          configuration: { Environment: "prod" },
          namespace: "Ship",
          timeoutInMinutes: 30,
        }),
      ],
    ],
  ]);

describe("continuation tokens", () => {
  it("keeps the action InProgress and dispatches a follow-up job carrying the token under the same action execution", () => {
    const sim = new Sim(customSpec());
    sim.start("e1");
    const first = sim.job("Ship");
    const d = sim.succeed("Ship", "e1", { continuationToken: "step-2", summary: "rolling out: 1 of 3 hosts", percentComplete: 33 });
    const [follow] = jobsOf(d);
    expect(follow).toMatchObject({
      jobId: `${first.actionExecutionId}:1:1`,
      actionExecutionId: first.actionExecutionId,
      attempt: 1,
      continuationToken: "step-2",
      configuration: { Environment: "prod" },
      deadline: first.deadline,
    });
    expect(d.events).toEqual([]);
    expect(sim.exec("e1").status).toBe("InProgress");
    expect(sim.slot("Deploy").actions[0]?.latest).toMatchObject({ status: "InProgress", summary: "rolling out: 1 of 3 hosts", percentComplete: 33 });
  });

  it("ends the action with the last job's success and its output variables", () => {
    const sim = new Sim(customSpec());
    sim.start("e1");
    sim.succeed("Ship", "e1", { continuationToken: "step-2", percentComplete: 33 });
    sim.succeed("Ship", "e1", { continuationToken: "step-3", percentComplete: 66 });
    const d = sim.succeed("Ship", "e1", { outputVariables: { DeploymentId: "d-42" }, percentComplete: 100, summary: "done" });
    expect(jobsOf(d)).toEqual([]);
    expect(sim.exec("e1").status).toBe("Succeeded");
    expect(sim.exec("e1").variables["Ship"]).toEqual({ DeploymentId: "d-42" });
    expect(sim.slot("Deploy").actions[0]?.latest).toMatchObject({ status: "Succeeded", summary: "done", percentComplete: 100 });
    expect(sim.trail()).toEqual(["pipeline::STARTED", "stage:Deploy:STARTED", "action:Deploy/Ship:STARTED", "action:Deploy/Ship:SUCCEEDED", "stage:Deploy:SUCCEEDED", "pipeline::SUCCEEDED"]);
  });

  it("ignores a result of an earlier job once a follow-up was dispatched", () => {
    const sim = new Sim(customSpec());
    sim.start("e1");
    const first = sim.job("Ship");
    sim.succeed("Ship", "e1", { continuationToken: "step-2" });
    const d = sim.apply({ type: "JobCompleted", result: success(first) });
    expect(d.ignored).toBe(`result for job ${first.jobId} of action execution ${first.actionExecutionId}, whose current job is ${first.actionExecutionId}:1:1`);
    expect(sim.exec("e1").status).toBe("InProgress");
  });

  it("keeps the action's deadline: a continued action times out like any other", () => {
    const sim = new Sim(customSpec());
    sim.start("e1");
    sim.succeed("Ship", "e1", { continuationToken: "step-2" });
    sim.ctx.advance(30 * 60_000 + TIMEOUT_GRACE_MS);
    const d = sim.apply({ type: "TimerFired" });
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.slot("Deploy").actions[0]?.latest?.errorDetails).toEqual({ code: "JobTimedOut", message: 'action "Ship" timed out after 30 minutes' });
    // The follow-up job is the one cancelled.
    expect(d.commands).toContainEqual(expect.objectContaining({ type: "CancelJob", jobId: `${sim.job("Ship").actionExecutionId}:1:1` }));
  });

  it("takes a failure of a follow-up job as the action's failure", () => {
    const sim = new Sim(customSpec());
    sim.start("e1");
    sim.succeed("Ship", "e1", { continuationToken: "step-2" });
    sim.fail("Ship", "host 2 unreachable", "e1");
    expect(sim.exec("e1").status).toBe("Failed");
    expect(sim.slot("Deploy").actions[0]?.latest?.errorDetails).toEqual({ code: "JobFailed", message: "host 2 unreachable" });
  });

  it("any number of continuations dispatch distinct jobs and end in exactly one success", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 8 }), fc.boolean(), (tokens, replayStale) => {
        const sim = new Sim(customSpec());
        sim.start("e1");
        for (const token of tokens) {
          const before = sim.job("Ship");
          sim.succeed("Ship", "e1", { continuationToken: token });
          expect(sim.job("Ship").continuationToken).toBe(token);
          if (replayStale) expect(sim.apply({ type: "JobCompleted", result: success(before) }).ignored).toBeDefined();
          expect(sim.exec("e1").status).toBe("InProgress");
        }
        sim.succeed("Ship", "e1");
        const ids = sim.jobs.map((j) => j.jobId);
        expect(new Set(ids).size).toBe(tokens.length + 1);
        expect(sim.exec("e1").status).toBe("Succeeded");
        expect(sim.trail().filter((t) => t === "action:Deploy/Ship:SUCCEEDED")).toHaveLength(1);
      }),
    );
  });
});
