// Builders for tests of the execution state machine (not exported by the package).

import type { ActionSpec, DecideContext, JobOutcome, JobSpec, PipelineSpec } from "./types.js";

/** An action spec with test defaults: a Build/Commands action at runOrder 1. */
export function actionSpec(name: string, over: Partial<ActionSpec> = {}): ActionSpec {
  return {
    name,
    category: "Build",
    owner: "AWS",
    provider: "Commands",
    builtIn: "Commands",
    providerVersion: "1",
    runOrder: 1,
    configuration: {},
    commands: ["true"],
    inputArtifacts: [],
    outputArtifacts: [],
    outputVariables: [],
    timeoutInMinutes: 60,
    environmentVariables: [],
    ...over,
  };
}

/** A Git source action producing `output`. */
export function sourceSpec(name: string, output: string, over: Partial<ActionSpec> = {}): ActionSpec {
  return actionSpec(name, {
    category: "Source",
    provider: "Git",
    builtIn: "Git",
    commands: [],
    configuration: { RepositoryUrl: "file:///repo", BranchName: "main" },
    outputArtifacts: [{ name: output, files: [] }],
    timeoutInMinutes: 20,
    ...over,
  });
}

/** A manual approval action. */
export function approvalSpec(name: string, over: Partial<ActionSpec> = {}): ActionSpec {
  return actionSpec(name, { category: "Approval", provider: "Manual", builtIn: "Manual", commands: [], timeoutInMinutes: 10080, ...over });
}

/** A pipeline spec from `[stageName, actions]` pairs. */
export function pipelineSpec(stages: [string, ActionSpec[]][], name = "demo"): PipelineSpec {
  return {
    name,
    version: 1,
    executionMode: "SUPERSEDED",
    artifactBucket: "sluice-artifacts",
    stages: stages.map(([stageName, actions]) => ({ name: stageName, actions })),
  };
}

/** A context with a settable clock and sequential ids ("id-1", "id-2", …). */
export function testContext(start = 1_000_000): DecideContext & { advance(ms: number): void } {
  let n = 0;
  const ctx = {
    now: start,
    newId: () => `id-${++n}`,
    advance(ms: number) {
      ctx.now += ms;
    },
  };
  return ctx;
}

/** A successful result for a dispatched job: every declared output produced. */
export function success(job: JobSpec, over: Partial<JobOutcome> = {}): JobOutcome {
  return {
    jobId: job.jobId,
    actionExecutionId: job.actionExecutionId,
    attempt: job.attempt,
    pipelineName: job.pipelineName,
    pipelineExecutionId: job.pipelineExecutionId,
    stageName: job.stageName,
    actionName: job.actionName,
    status: "Succeeded",
    outputArtifacts: job.outputNames.map((name) => ({
      name,
      artifactId: `${job.actionExecutionId}/${name}`,
      bucket: job.artifactBucket,
      key: `${job.pipelineName}/${job.pipelineExecutionId}/${job.actionExecutionId}/${name}.zip`,
      sha256: "ab".repeat(32),
      sizeBytes: 42,
    })),
    outputVariables: {},
    ...over,
  };
}

/** A failed result for a dispatched job. */
export function failure(job: JobSpec, message = "exit code 1", over: Partial<JobOutcome> = {}): JobOutcome {
  return {
    ...success(job),
    status: "Failed",
    outputArtifacts: [],
    summary: message,
    errorDetails: { code: "JobFailed", message },
    ...over,
  };
}
