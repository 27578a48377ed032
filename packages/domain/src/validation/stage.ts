// A stage's name, blockers and action count.

import type { StageDeclaration } from "@sluice/proto";
import { LIMITS, STAGE_NAME_PATTERN } from "../limits.js";
import { q } from "./messages.js";
import { checkName } from "./names.js";
import type { Violations } from "./violations.js";

export function checkStage(stage: StageDeclaration, s: number, names: Map<string, number>, v: Violations): void {
  const path = `pipeline.stages[${s}]`;
  checkName(`${path}.name`, stage.name, STAGE_NAME_PATTERN, v);
  if (stage.name !== "") {
    const first = names.get(stage.name);
    if (first === undefined) names.set(stage.name, s);
    else v.add(`${path}.name`, `${q(stage.name)} is already the name of stages[${first}]`);
  }
  stage.blockers.forEach((blocker, b) => {
    checkName(`${path}.blockers[${b}].name`, blocker.name, STAGE_NAME_PATTERN, v);
    if (blocker.type !== "Schedule") v.add(`${path}.blockers[${b}].type`, `must be "Schedule", got ${q(blocker.type)}`);
  });
  const count = stage.actions.length;
  if (count < LIMITS.minActionsPerStage || count > LIMITS.maxActionsPerStage) {
    v.add(`${path}.actions`, `a stage needs ${LIMITS.minActionsPerStage} to ${LIMITS.maxActionsPerStage} actions, got ${count}`);
  }
}
