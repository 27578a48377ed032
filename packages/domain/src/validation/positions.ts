// Where each action sits and what it produces, indexed once per declaration so
// artifact and variable references can be checked against "runs earlier".

import type { ActionDeclaration, StageDeclaration } from "@sluice/proto";
import { q } from "./messages.js";
import type { ProviderSpec } from "./providers.js";

/** Where an artifact or namespace is declared, for "runs earlier" checks. */
export interface Declared {
  readonly stage: number;
  readonly action: number;
  readonly runOrder: number;
  readonly path: string;
  readonly stageName: string;
  readonly actionName: string;
  readonly decl: ActionDeclaration;
}

/** What the declaration produces, for the checks of references and inputs. */
export interface PipelineIndex {
  readonly outputs: ReadonlyMap<string, Declared>;
  readonly namespaces: ReadonlyMap<string, Declared>;
  readonly artifactNames: ReadonlySet<string>;
  /** Variables produced per action path, filled lazily by producedVariables. */
  readonly produced: Map<string, ReadonlySet<string> | undefined>;
  /** Names of the declared pipeline variables (`#{variables.<name>}`). */
  readonly pipelineVariables: ReadonlySet<string>;
  /** The declared custom action types (see ValidationOptions). */
  readonly customActionType: CustomActionTypeLookup;
}

/** The spec of a declared (not deleted) custom action type, or undefined. */
export type CustomActionTypeLookup = (id: { readonly category: string; readonly provider: string; readonly version: string }) => ProviderSpec | undefined;

/** A point in the pipeline: stage index and runOrder (a rule checked after the stage's actions has an infinite one). */
export type Position = Pick<Declared, "stage" | "runOrder">;

export function declaredAt(stage: StageDeclaration, s: number, action: ActionDeclaration, a: number): Declared {
  return {
    stage: s,
    action: a,
    runOrder: action.runOrder ?? 1,
    path: `pipeline.stages[${s}].actions[${a}]`,
    stageName: stage.name,
    actionName: action.name,
    decl: action,
  };
}

/** Records the first producer of each output artifact and the first owner of each namespace. */
export function indexDeclarations(
  stages: readonly StageDeclaration[],
  outputs: Map<string, Declared>,
  namespaces: Map<string, Declared>,
): void {
  stages.forEach((stage, s) => {
    stage.actions.forEach((action, a) => {
      const at = declaredAt(stage, s, action, a);
      for (const out of action.outputArtifacts) {
        if (out.name !== "" && !outputs.has(out.name)) outputs.set(out.name, at);
      }
      if (action.namespace !== "" && !namespaces.has(action.namespace)) namespaces.set(action.namespace, at);
    });
  });
}

/** True when `earlier` is guaranteed to finish before `later` starts. */
export function runsBefore(earlier: Position, later: Position): boolean {
  return earlier.stage < later.stage || (earlier.stage === later.stage && earlier.runOrder < later.runOrder);
}

export function describe(at: Declared): string {
  return `action ${q(at.actionName)} in stage ${q(at.stageName)}`;
}
