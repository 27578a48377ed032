// Builders for tests of the execution state machine (not exported by the package).

import { isDomainError } from "../errors.js";
import type { DomainError, ErrorCode } from "../errors.js";
import { decide, initialRuntime } from "./decide.js";
import { findExecution } from "./draft.js";
import type {
  ActionSpec,
  DecideContext,
  Decision,
  Emitted,
  ExecutionCommand,
  ExecutionEvent,
  ExecutionMode,
  ExecutionRuntime,
  JobOutcome,
  JobSpec,
  PipelineRuntime,
  PipelineSpec,
  RuleSpec,
  StageSlot,
} from "./types.js";

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

/** A VariableCheck rule. */
export function variableCheckRule(name: string, variable: string, operator: string, value: string): RuleSpec {
  return {
    name,
    ruleTypeId: { category: "Rule", owner: "AWS", provider: "VariableCheck", version: "1" },
    configuration: { Variable: variable, Operator: operator, Value: value },
    commands: [],
    inputArtifacts: [],
  };
}

/** A Commands rule. */
export function commandsRule(name: string, over: Partial<RuleSpec> = {}): RuleSpec {
  return {
    name,
    ruleTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" },
    configuration: {},
    commands: ["./check.sh"],
    inputArtifacts: [],
    ...over,
  };
}

/** A pipeline spec from `[stageName, actions]` pairs. */
export function pipelineSpec(stages: [string, ActionSpec[]][], name = "demo", executionMode: ExecutionMode = "SUPERSEDED"): PipelineSpec {
  return {
    name,
    version: 1,
    executionMode,
    artifactBucket: "sluice-artifacts",
    stages: stages.map(([stageName, actions]) => ({ name: stageName, actions })),
    variables: [],
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

/** Freezes a value and everything reachable from it, so any change in place throws (decide() must not change its input). */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}

/** The jobs a decision dispatches, in order. */
export function jobsOf(d: Pick<Decision, "commands">): JobSpec[] {
  return d.commands.flatMap((c) => (c.type === "DispatchJob" ? [c.job] : []));
}

/** Drives decide() like the shell does: keeps the state, the dispatched jobs, every command and the emitted events. */
export class Sim {
  state: PipelineRuntime;
  readonly ctx = testContext();
  readonly jobs: JobSpec[] = [];
  readonly commands: ExecutionCommand[] = [];
  readonly events: Emitted[] = [];
  last: Decision | undefined;

  constructor(spec: PipelineSpec) {
    this.state = initialRuntime(spec);
  }

  apply(event: ExecutionEvent): Decision {
    const d = decide(deepFreeze(this.state), event, this.ctx);
    this.last = d;
    this.state = d.state;
    this.commands.push(...d.commands);
    for (const c of d.commands) if (c.type === "DispatchJob") this.jobs.push(c.job);
    this.events.push(...d.events);
    return d;
  }

  start(executionId: string, over: Partial<Extract<ExecutionEvent, { type: "ExecutionRequested" }>> = {}): Decision {
    return this.apply({ type: "ExecutionRequested", executionId, trigger: { triggerType: "StartPipelineExecution", triggerDetail: "alice" }, ...over });
  }

  /** Applies a request that must be refused: checks the error code and that nothing changed; returns the error. */
  refuse(event: ExecutionEvent, code: ErrorCode): DomainError {
    const before = JSON.stringify(this.state);
    try {
      decide(this.state, event, this.ctx);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      if (err.code !== code) throw new Error(`${event.type} was refused with ${err.code} (${err.message}); expected ${code}`);
      if (JSON.stringify(this.state) !== before) throw new Error(`${event.type} was refused but changed the state`);
      return err;
    }
    throw new Error(`${event.type} was accepted; expected ${code}`);
  }

  job(actionName: string, executionId?: string): JobSpec {
    const found = this.jobs.findLast((j) => j.actionName === actionName && (executionId === undefined || j.pipelineExecutionId === executionId));
    if (found === undefined) throw new Error(`no job dispatched for ${actionName}`);
    return found;
  }

  succeed(actionName: string, executionId?: string, over: Partial<JobOutcome> = {}): Decision {
    return this.apply({ type: "JobCompleted", result: success(this.job(actionName, executionId), over) });
  }

  fail(actionName: string, message = "exit code 1", executionId?: string): Decision {
    return this.apply({ type: "JobCompleted", result: failure(this.job(actionName, executionId), message) });
  }

  /** An execution in flight, or one kept for a retry. */
  exec(id: string): ExecutionRuntime {
    const e = findExecution(this.state, id);
    if (e === undefined) throw new Error(`no execution ${id}`);
    return e;
  }

  slot(name: string): StageSlot {
    const s = this.state.stages.find((x) => x.name === name);
    if (s === undefined) throw new Error(`no stage ${name}`);
    return s;
  }

  /** The shell's archiving: ended executions leave `executions`. */
  archive(): void {
    const ended = ["Succeeded", "Failed", "Superseded", "Stopped", "Cancelled"];
    // A new map, as the shell makes: the state decide() saw is frozen.
    this.state = { ...this.state, executions: Object.fromEntries(Object.entries(this.state.executions).filter(([, e]) => !ended.includes(e.status))) };
  }

  /** "kind:stage/action:STATE" lines of the events so far, for order assertions. */
  trail(executionId?: string): string[] {
    return this.events
      .filter((e) => executionId === undefined || e.event.executionId === executionId)
      .map((e) => `${e.kind}:${[e.event.stage, e.event.action].filter((x) => x !== undefined).join("/")}:${e.event.state}`);
  }
}
