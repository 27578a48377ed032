// Enable/DisableStageTransition (AWS: "Transitions"), inbound only.
// Changes only the stage slot's transition; enabling leaves an admitWaiters
// step on the agenda for the driver (flow.ts).

import { DomainError, invalid } from "../errors.js";
import { TRANSITION_REASON_PATTERN } from "../limits.js";
import type { DecideContext, ExecutionEvent, PipelineRuntime } from "./types.js";
import { draftOf, slotByName } from "./draft.js";
import type { Handled } from "./draft.js";


type TransitionChanged = Extract<ExecutionEvent, { type: "TransitionChanged" }>;

/**
 * Disabling the inbound transition of a stage keeps new executions out (the
 * one inside continues; arrivals wait in front, and in SUPERSEDED a newer
 * arrival still replaces the waiter); enabling it lets the right waiter in.
 * Who changed it and when is recorded either way.
 */
export function onTransitionChanged(state: PipelineRuntime, event: TransitionChanged, ctx: DecideContext): Handled {
  if (slotByName(state, event.stageName) === undefined) {
    throw new DomainError("StageNotFoundException", `pipeline ${state.pipelineName} has no stage ${event.stageName}`);
  }
  if (!event.enabled && !TRANSITION_REASON_PATTERN.test(event.reason)) {
    throw invalid("ValidationException", [
      {
        field: "reason",
        message:
          event.reason.length === 0 || event.reason.length > 300
            ? `must be 1-300 characters, got ${event.reason.length}`
            : "may contain only letters, digits, spaces and ! @ ( ) . * ? -",
      },
    ]);
  }
  const d = draftOf(state, ctx);
  const slot = slotByName(d.state, event.stageName);
  if (slot === undefined) throw new Error(`stage ${event.stageName} vanished from the copy of the state`);
  slot.transition = { enabled: event.enabled, lastChangedBy: event.by, lastChangedAt: ctx.now };
  if (!event.enabled) slot.transition.disabledReason = event.reason;
  else d.agenda.push({ kind: "admitWaiters", stageName: event.stageName });
  return d;
}
