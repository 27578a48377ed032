// Sluice's own ways a pipeline starts, declared with it: `schedules` and `eventRules`.

import type { PipelineDeclaration } from "@sluice/proto";
import { PIPELINE_NAME_PATTERN } from "../limits.js";
import { parseSchedule } from "../schedules/schedule-expression.js";
import { q } from "./messages.js";
import type { Violations } from "./violations.js";

export const MAX_SCHEDULES = 10;
export const MAX_EVENT_RULES = 10;
export const START_RULE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Upstream execution states an event rule may start on (EventBridge's names). */
export const EVENT_RULE_STATES: readonly string[] = ["SUCCEEDED", "FAILED", "STOPPED", "SUPERSEDED", "CANCELED"];

export function checkPipelineStarts(decl: PipelineDeclaration, v: Violations): void {
  checkList(decl.schedules, "pipeline.schedules", MAX_SCHEDULES, v);
  decl.schedules.forEach((schedule, i) => {
    const path = `pipeline.schedules[${i}]`;
    if (schedule.expression === "") {
      v.add(`${path}.expression`, "is required");
      return;
    }
    if (schedule.expression.length > 256) {
      v.add(`${path}.expression`, `must be at most 256 characters, got ${schedule.expression.length}`);
      return;
    }
    const parsed = parseSchedule(schedule.expression, schedule.timeZone);
    if ("problem" in parsed) v.add(`${path}.${parsed.field}`, parsed.problem);
  });
  checkList(decl.eventRules, "pipeline.eventRules", MAX_EVENT_RULES, v);
  decl.eventRules.forEach((rule, i) => {
    const path = `pipeline.eventRules[${i}]`;
    if (rule.pipelineName === "") v.add(`${path}.pipelineName`, "is required");
    else if (!PIPELINE_NAME_PATTERN.test(rule.pipelineName)) v.add(`${path}.pipelineName`, `must be 1-100 characters of A-Z a-z 0-9 . @ _ -, got ${q(rule.pipelineName)}`);
    // A pipeline that starts itself when it ends would never stop.
    else if (rule.pipelineName === decl.name) v.add(`${path}.pipelineName`, "must name another pipeline: a pipeline started by its own executions would run forever");
    rule.states.forEach((state, s) => {
      if (!EVENT_RULE_STATES.includes(state)) v.add(`${path}.states[${s}]`, `must be one of ${EVENT_RULE_STATES.join(", ")}, got ${q(state)}`);
      else if (rule.states.indexOf(state) !== s) v.add(`${path}.states[${s}]`, `${q(state)} is listed twice`);
    });
  });
}

/** At most `max` entries, each named once with a valid name. */
function checkList(entries: readonly { name: string }[], path: string, max: number, v: Violations): void {
  if (entries.length > max) v.add(path, `at most ${max} entries, got ${entries.length}`);
  const seen = new Map<string, number>();
  entries.forEach((entry, i) => {
    const field = `${path}[${i}].name`;
    if (entry.name === "") v.add(field, "is required");
    else if (!START_RULE_NAME_PATTERN.test(entry.name)) v.add(field, `must be 1-64 characters of A-Z a-z 0-9 _ -, got ${q(entry.name)}`);
    else {
      const first = seen.get(entry.name);
      if (first !== undefined) v.add(field, `${q(entry.name)} is already declared at ${path}[${first}]`);
      else seen.set(entry.name, i);
    }
  });
}
