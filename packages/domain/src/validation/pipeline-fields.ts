// The pipeline's own fields: name, role, artifact stores, modes, variables and
// the stage and action counts.

import type { ArtifactStore, PipelineDeclaration } from "@sluice/proto";
import {
  BUCKET_NAME_PATTERN,
  EXECUTION_MODES,
  LIMITS,
  PIPELINE_NAME_PATTERN,
  PIPELINE_TYPES,
  SUPPORTED_EXECUTION_MODES,
  VARIABLE_KEY_PATTERN,
} from "../limits.js";
import { bucketMessage, keyPath, q } from "./messages.js";
import { checkName, checkRoleArn } from "./names.js";
import type { Violations } from "./violations.js";

export function checkPipelineFields(decl: PipelineDeclaration, v: Violations): void {
  checkName("pipeline.name", decl.name, PIPELINE_NAME_PATTERN, v);
  checkRoleArn("pipeline.roleArn", decl.roleArn, v);

  const storeCount = Object.keys(decl.artifactStores).length;
  if (decl.artifactStore !== undefined && storeCount > 0) {
    v.add("pipeline.artifactStores", "give either artifactStore or artifactStores, not both");
  }
  if (decl.artifactStore !== undefined) checkArtifactStore("pipeline.artifactStore", decl.artifactStore, v);
  for (const [region, store] of Object.entries(decl.artifactStores)) {
    const path = keyPath("pipeline.artifactStores", region);
    if (region.length < LIMITS.minRegionLength || region.length > LIMITS.maxRegionLength) {
      v.add(path, `region ${q(region)} must be ${LIMITS.minRegionLength}-${LIMITS.maxRegionLength} characters`);
    }
    checkArtifactStore(path, store, v);
  }

  if (decl.version < 0) v.add("pipeline.version", `must be 1 or more, got ${decl.version}`);

  const mode = decl.executionMode;
  if (mode !== "" && !SUPPORTED_EXECUTION_MODES.includes(mode)) {
    v.add(
      "pipeline.executionMode",
      (EXECUTION_MODES as readonly string[]).includes(mode)
        ? `${q(mode)} is not supported yet; Sluice runs SUPERSEDED pipelines only`
        : `must be one of ${EXECUTION_MODES.join(", ")}, got ${q(mode)}`,
    );
  }
  const type = decl.pipelineType;
  if (type !== "" && !(PIPELINE_TYPES as readonly string[]).includes(type)) {
    v.add("pipeline.pipelineType", `must be one of ${PIPELINE_TYPES.join(", ")}, got ${q(type)}`);
  }

  checkPipelineVariables(decl, v);

  const stages = decl.stages.length;
  if (stages < LIMITS.minStages || stages > LIMITS.maxStages) {
    v.add("pipeline.stages", `a pipeline needs ${LIMITS.minStages} to ${LIMITS.maxStages} stages, got ${stages}`);
  }
  const actions = decl.stages.reduce((n, stage) => n + stage.actions.length, 0);
  if (actions > LIMITS.maxActionsPerPipeline) {
    v.add("pipeline.stages", `a pipeline has at most ${LIMITS.maxActionsPerPipeline} actions, got ${actions}`);
  }
}

/** Pipeline variables (AWS PipelineVariableDeclaration): ≤50, unique names, defaults 1–1000, descriptions ≤200. */
function checkPipelineVariables(decl: PipelineDeclaration, v: Violations): void {
  const vars = decl.variables;
  if (vars.length > LIMITS.maxPipelineVariables) {
    v.add("pipeline.variables", `at most ${LIMITS.maxPipelineVariables} pipeline variables, got ${vars.length}`);
  }
  const seen = new Map<string, number>();
  vars.forEach((variable, i) => {
    const path = `pipeline.variables[${i}]`;
    if (variable.name === "") {
      v.add(`${path}.name`, "is required");
    } else if (!VARIABLE_KEY_PATTERN.test(variable.name)) {
      v.add(`${path}.name`, `must be 1-${LIMITS.maxPipelineVariableNameLength} characters of A-Z a-z 0-9 @ _ -, got ${q(variable.name)}`);
    } else {
      const first = seen.get(variable.name);
      if (first !== undefined) v.add(`${path}.name`, `${q(variable.name)} is already declared at pipeline.variables[${first}]`);
      else seen.set(variable.name, i);
    }
    // An empty default means "none": StartPipelineExecution must then give a value.
    if (variable.defaultValue.length > LIMITS.maxPipelineVariableValueLength) {
      v.add(`${path}.defaultValue`, `must be at most ${LIMITS.maxPipelineVariableValueLength} characters, got ${variable.defaultValue.length}`);
    }
    if (variable.description.length > LIMITS.maxPipelineVariableDescriptionLength) {
      v.add(`${path}.description`, `must be at most ${LIMITS.maxPipelineVariableDescriptionLength} characters, got ${variable.description.length}`);
    }
  });
}

function checkArtifactStore(path: string, store: ArtifactStore, v: Violations): void {
  // An empty type is the default "S3" (normalizePipeline fills it in).
  if (store.type !== "" && store.type !== "S3") v.add(`${path}.type`, `must be "S3", got ${q(store.type)}`);
  if (store.location === "") v.add(`${path}.location`, "is required: name the bucket that holds the artifacts");
  else if (!BUCKET_NAME_PATTERN.test(store.location)) v.add(`${path}.location`, bucketMessage(store.location));
  const key = store.encryptionKey;
  if (key !== undefined) {
    if (key.id.length < 1 || key.id.length > LIMITS.maxEncryptionKeyIdLength) {
      v.add(`${path}.encryptionKey.id`, `must be 1-${LIMITS.maxEncryptionKeyIdLength} characters`);
    }
    if (key.type !== "KMS") v.add(`${path}.encryptionKey.type`, `must be "KMS", got ${q(key.type)}`);
  }
}
