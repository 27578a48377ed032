// Structural validation of a pipeline declaration against AWS CodePipeline's shapes, quotas and rules.
//
// `validatePipeline` checks everything it can and returns every problem with
// the full field path (`pipeline.stages[1].actions[0].inputArtifacts[0].name`),
// so a user fixes a file in one round trip. It never throws: whatever protobuf
// message it gets, it answers with a list. Defaults that `normalizePipeline`
// fills (runOrder, executionMode, pipelineType, artifact store, environment
// variable type) are accepted when absent, so validation gives the same answer
// before and after normalization.

import type { PipelineDeclaration } from "@sluice/proto";
import type { FieldViolation } from "../errors.js";
import { checkAction } from "./action.js";
import { checkStageConditions } from "./conditions.js";
import { checkPipelineFields } from "./pipeline-fields.js";
import { checkPipelineStarts } from "./pipeline-starts.js";
import { declaredAt, indexDeclarations } from "./positions.js";
import type { CustomActionTypeLookup, Declared, PipelineIndex } from "./positions.js";
import { checkStage } from "./stage.js";
import { checkTriggers } from "./triggers.js";
import { Violations } from "./violations.js";

/**
 * Every structural problem of a declaration, each naming its field with a
 * `pipeline.` prefix. An empty list means CreatePipeline/UpdatePipeline may
 * store it. Never throws.
 */
/** What validation knows beyond the declaration. */
export interface ValidationOptions {
  /** The custom action types actions may use (owner Custom); none when absent. */
  readonly customActionType?: CustomActionTypeLookup | undefined;
}

export function validatePipeline(decl: PipelineDeclaration, options: ValidationOptions = {}): FieldViolation[] {
  const v = new Violations();
  checkPipelineFields(decl, v);
  checkPipelineStarts(decl, v);
  checkTriggers(decl, v);

  const outputs = new Map<string, Declared>();
  const namespaces = new Map<string, Declared>();
  indexDeclarations(decl.stages, outputs, namespaces);
  const index: PipelineIndex = {
    outputs,
    namespaces,
    artifactNames: new Set(outputs.keys()),
    produced: new Map(),
    pipelineVariables: new Set(decl.variables.map((x) => x.name)),
    customActionType: options.customActionType ?? (() => undefined),
  };

  const stageNames = new Map<string, number>();
  const ruleNames = new Map<string, string>();
  decl.stages.forEach((stage, s) => {
    checkStage(stage, s, stageNames, v);
    const actionNames = new Map<string, number>();
    stage.actions.forEach((action, a) => {
      checkAction(decl, declaredAt(stage, s, action, a), actionNames, index, v);
    });
    checkStageConditions(decl, stage, s, ruleNames, index, v);
  });
  return v.result();
}
