// Read views for the API: one execution's stages and actions
// (WatchPipelineExecution's snapshot, from the domain's pieces of
// GetPipelineState), and the domain's action execution details
// (ListActionExecutions) as protobuf init objects.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DomainError,
  SECRET_ENV_TYPE,
  SECRET_ENV_TYPES,
  SECRET_MASK,
  actionExecutionView,
  conditionStateFields,
  createMasker,
  maskDeep,
  maskUserinfo,
  transitionStateView,
  viewMasker,
} from "@sluice/domain";
import type { ActionExecutionDetailSpec, ArtifactDetailSpec, ExecutionRuntime, FieldViolation, PipelineRuntime } from "@sluice/domain";
import type {
  ActionExecutionDetailSchema,
  ArtifactDetailSchema,
  PipelineDeclaration,
  StageStateSchema,
} from "@sluice/proto";

type StageStateInit = MessageInitShape<typeof StageStateSchema>;
type ArtifactDetailInit = MessageInitShape<typeof ArtifactDetailSchema>;
/** One entry of ListActionExecutions. */
export type ActionExecutionDetailInit = MessageInitShape<typeof ActionExecutionDetailSchema>;

/**
 * The stages of `declaration` (the execution's pipeline version) as `exec`
 * saw them: `latestExecution` is the execution's own run of the stage,
 * `actionStates` its actions' latest attempts, `inboundExecution(s)` the
 * execution itself while it waits in front of the stage. The inbound
 * transition states are the pipeline's current ones (from `state`).
 */
export function executionStageStates(exec: ExecutionRuntime, declaration: PipelineDeclaration, state: PipelineRuntime | undefined): StageStateInit[] {
  const type = exec.executionType ?? "STANDARD";
  return declaration.stages.map((stage): StageStateInit => {
    const run = exec.stages.find((s) => s.name === stage.name);
    const view: StageStateInit = {
      stageName: stage.name,
      inboundTransitionState: transitionStateView(state?.stages.find((s) => s.name === stage.name)?.transition),
      actionStates: stage.actions.map((action) => {
        const latest = run?.actions.find((a) => a.name === action.name);
        const revision = exec.sourceRevisions.find((r) => r.actionName === action.name);
        return {
          actionName: action.name,
          ...(latest === undefined ? {} : { latestExecution: actionExecutionView(latest, latest.lastUpdateTime) }),
          ...(revision === undefined
            ? {}
            : { currentRevision: { revisionId: revision.revisionId, ...(revision.created === undefined ? {} : { created: timestampFromMs(revision.created) }) } }),
        };
      }),
    };
    if (exec.waitingFor === stage.name) {
      const inbound = { pipelineExecutionId: exec.id, status: "InProgress", type };
      view.inboundExecution = inbound;
      view.inboundExecutions = [inbound];
    }
    if (run !== undefined) {
      view.latestExecution = { pipelineExecutionId: exec.id, status: run.status, type };
      const manual = run.manualRetryAttempts ?? 0;
      const auto = run.autoRetryAttempts ?? 0;
      if (manual + auto > 0) {
        view.retryStageMetadata = { manualStageRetryAttempt: manual, autoStageRetryAttempt: auto, latestRetryTrigger: run.lastRetryTrigger ?? "ManualStageRetry" };
      }
      // The latest check of each condition kind in this execution.
      Object.assign(view, conditionStateFields(run.conditions ?? []));
    }
    return view;
  });
}

/**
 * ListActionExecutions' entry for the domain's plain detail. With
 * `latestOnly`, earlier attempts of each action are left out (the details
 * are newest first, so an action's first entry is its latest attempt).
 */
export function actionExecutionDetailInits(details: readonly ActionExecutionDetailSpec[], latestOnly: boolean): ActionExecutionDetailInit[] {
  const seen = new Set<string>();
  const out: ActionExecutionDetailInit[] = [];
  for (const d of details) {
    // Stage and action names never contain "/" (AWS's name pattern).
    const key = `${d.stageName}/${d.actionName}`;
    if (latestOnly && seen.has(key)) continue;
    seen.add(key);
    out.push(detailInit(d));
  }
  return out;
}

function detailInit(d: ActionExecutionDetailSpec): ActionExecutionDetailInit {
  const result = d.output.executionResult;
  return {
    pipelineExecutionId: d.pipelineExecutionId,
    actionExecutionId: d.actionExecutionId,
    pipelineVersion: d.pipelineVersion,
    stageName: d.stageName,
    actionName: d.actionName,
    startTime: timestampFromMs(d.startTime),
    lastUpdateTime: timestampFromMs(d.lastUpdateTime),
    updatedBy: d.updatedBy ?? "",
    status: d.status,
    input: {
      ...(d.input.actionTypeId === undefined ? {} : { actionTypeId: { ...d.input.actionTypeId } }),
      configuration: { ...d.input.configuration },
      resolvedConfiguration: { ...d.input.resolvedConfiguration },
      inputArtifacts: d.input.inputArtifacts.map(artifactDetail),
      namespace: d.input.namespace ?? "",
    },
    output: {
      outputArtifacts: d.output.outputArtifacts.map(artifactDetail),
      executionResult: {
        externalExecutionId: result.externalExecutionId ?? "",
        externalExecutionSummary: result.externalExecutionSummary ?? "",
        externalExecutionUrl: result.externalExecutionUrl ?? "",
        ...(result.errorDetails === undefined ? {} : { errorDetails: { ...result.errorDetails } }),
      },
      outputVariables: { ...d.output.outputVariables },
    },
  };
}

function artifactDetail(a: ArtifactDetailSpec): ArtifactDetailInit {
  return { name: a.name, s3location: { bucket: a.s3location.bucket, key: a.s3location.key } };
}

// ---------------------------------------------------------------- secrets in views

/** The SECRET (and store-backed) environment variable values of a declaration. */
export function declarationSecrets(declaration: PipelineDeclaration | undefined): string[] {
  return (declaration?.stages ?? []).flatMap((s) =>
    s.actions.flatMap((a) => a.environmentVariables.filter((v) => SECRET_ENV_TYPES.has(v.type) && v.value !== "").map((v) => v.value)),
  );
}

/**
 * The masker of every answer about a pipeline: its secrets (in any form)
 * become `****`, and URL userinfo `****@`.
 */
export function answerMasker(secrets: readonly string[]): <T>(view: T) => T {
  const mask = viewMasker(secrets);
  return (view) => maskDeep(view, mask);
}

/**
 * The declaration as declaration events carry it: SECRET values masked. The
 * repository URL keeps its credentials: the source poller polls with them.
 */
export function eventDeclaration(declaration: PipelineDeclaration): PipelineDeclaration {
  return maskDeep(declaration, createMasker(declarationSecrets(declaration)));
}

/**
 * An update that sends back what GetPipeline showed keeps the stored secrets:
 * a SECRET whose value is `****` keeps the stored value of the same action and
 * name, a `****` of a custom type's secret property keeps the stored value of
 * the same action and key, and a configuration value equal to the stored one with
 * its userinfo masked keeps the stored one. A `****` with nothing to keep is refused.
 */
export function restoreMaskedValues(
  incoming: PipelineDeclaration,
  stored: PipelineDeclaration | undefined,
  secretKeysOf: (type: { category: string; provider: string; version: string }) => readonly string[] = () => [],
): PipelineDeclaration {
  const violations: FieldViolation[] = [];
  const stages = incoming.stages.map((stage, s) => {
    const storedStage = stored?.stages.find((x) => x.name === stage.name);
    return {
      ...stage,
      actions: stage.actions.map((action, a) => {
        const old = storedStage?.actions.find((x) => x.name === action.name);
        const secretKeys = action.actionTypeId?.owner === "Custom" ? secretKeysOf(action.actionTypeId) : [];
        const configuration = Object.fromEntries(
          Object.entries(action.configuration).map(([key, value]) => {
            const before = old?.configuration[key];
            if (value === SECRET_MASK && secretKeys.includes(key)) {
              if (before === undefined) {
                violations.push({
                  field: `pipeline.stages[${s}].actions[${a}].configuration.${key}`,
                  message: `${SECRET_MASK} keeps a stored secret, but this action has no stored ${key}; give the value`,
                });
              }
              return [key, before ?? value];
            }
            return [key, before !== undefined && before !== value && maskUserinfo(before) === value ? before : value];
          }),
        );
        const environmentVariables = action.environmentVariables.map((env, e) => {
          if (env.type !== SECRET_ENV_TYPE || env.value !== SECRET_MASK) return env;
          const kept = old?.environmentVariables.find((x) => x.name === env.name && x.type === SECRET_ENV_TYPE);
          if (kept === undefined) {
            violations.push({
              field: `pipeline.stages[${s}].actions[${a}].environmentVariables[${e}].value`,
              message: `${SECRET_MASK} keeps a stored secret, but this action has no stored SECRET named ${JSON.stringify(env.name)}; give the value`,
            });
            return env;
          }
          return { ...env, value: kept.value };
        });
        return { ...action, configuration, environmentVariables };
      }),
    };
  });
  if (violations.length > 0) throw new DomainError("ValidationException", violations.map((v) => `${v.field}: ${v.message}`).join("; "), violations);
  return { ...incoming, stages };
}
