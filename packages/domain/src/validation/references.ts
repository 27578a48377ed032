// `#{namespace.key}` references: each must name a variable that exists and is
// produced before the value that uses it is read.

import { NAMESPACE_PATTERN, PIPELINE_VARIABLES, VARIABLE_KEY_PATTERN } from "../limits.js";
import { commandsOutputVariables } from "./buildspec.js";
import { listed, q } from "./messages.js";
import { describe, runsBefore } from "./positions.js";
import type { Declared, PipelineIndex, Position } from "./positions.js";
import { resolveProvider } from "./providers.js";
import type { Violations } from "./violations.js";

/** A `#{...}` reference inside a configuration or environment variable value (linear: no nested quantifiers). */
const VARIABLE_REFERENCE = /#\{([^{}]*)\}/g;

/** Checks every `#{namespace.key}` in a value: the namespace must belong to an action that runs earlier. */
export function checkReferences(
  path: string,
  value: string,
  here: Position,
  index: PipelineIndex,
  v: Violations,
  subject = "this action",
): void {
  if (!value.includes("#{")) return;
  for (const match of value.matchAll(VARIABLE_REFERENCE)) {
    const inner = match[1] ?? "";
    const reference = q(`#{${inner}}`);
    const dot = inner.indexOf(".");
    const namespace = dot < 0 ? "" : inner.slice(0, dot);
    const key = dot < 0 ? "" : inner.slice(dot + 1);
    if (!NAMESPACE_PATTERN.test(namespace) || !VARIABLE_KEY_PATTERN.test(key)) {
      v.add(path, `${reference} is not a variable reference; write #{namespace.variable}`);
      continue;
    }
    if (namespace === "codepipeline") {
      if (!PIPELINE_VARIABLES.includes(key)) {
        v.add(path, `${reference}: the codepipeline namespace has ${PIPELINE_VARIABLES.join(", ")} only`);
      }
      continue;
    }
    if (namespace === "variables") {
      if (!index.pipelineVariables.has(key)) {
        v.add(
          path,
          index.pipelineVariables.size === 0
            ? `${reference}: the pipeline declares no variables`
            : `${reference}: the pipeline declares ${listed(index.pipelineVariables)}, not ${q(key)}`,
        );
      }
      continue;
    }
    const producer = index.namespaces.get(namespace);
    if (producer === undefined) {
      v.add(path, `${reference}: no action has the namespace ${q(namespace)}`);
      continue;
    }
    if (!runsBefore(producer, here)) {
      v.add(path, `${reference}: ${describe(producer)} does not run before ${subject}`);
      continue;
    }
    const produced = producedVariables(producer, index);
    if (produced !== undefined && !produced.has(key)) {
      v.add(
        path,
        produced.size === 0
          ? `${reference}: ${describe(producer)} produces no variables`
          : `${reference}: ${describe(producer)} produces ${listed(produced)}, not ${q(key)}`,
      );
    }
  }
}

/** The variables an action produces, or undefined when unknown (its type is not one Sluice runs). */
function producedVariables(producer: Declared, index: PipelineIndex): ReadonlySet<string> | undefined {
  // Cached per validation run: a Set keeps many references to a large producer linear.
  if (index.produced.has(producer.path)) return index.produced.get(producer.path);
  const spec = resolveProvider(producer.decl.actionTypeId);
  const names =
    spec === undefined || spec.outputVariables === "any"
      ? undefined
      : spec.outputVariables === "declared"
        ? commandsOutputVariables(producer.decl.outputVariables, producer.decl.configuration)
        : spec.outputVariables;
  const produced = names === undefined ? undefined : new Set(names);
  index.produced.set(producer.path, produced);
  return produced;
}
