import type { Collection, Db } from "mongodb";
import { parseSchedule } from "@sluice/domain";
import type { PipelineDeclaration } from "@sluice/proto";
import { sourceActionsOf } from "../webhooks/source-actions.js";

/** One declared schedule and when it is next due. */
export interface ScheduleDoc {
  _id: string; // "<pipeline>/<schedule>"
  pipelineName: string;
  name: string;
  expression: string;
  timeZone: string;
  /** When the schedule was (re)declared: where rate() ticks count from. */
  anchorAt: number;
  /** The next tick not yet started. A tick in the past is due (missed while no poller ran). */
  nextRunAt: number;
  lastRunAt?: number;
  lastExecutionId?: string;
  lastError?: string;
}

/** A Git source of a pipeline: event rules pin the ones an upstream shares. */
export interface RuleSource {
  actionName: string;
  repositoryUrl: string;
  branch: string;
}

/** One declared event rule of a (downstream) pipeline. */
export interface EventRuleDoc {
  _id: string; // "<pipeline>/<rule>"
  pipelineName: string;
  name: string;
  upstreamPipeline: string;
  states: string[];
  /** The downstream pipeline's Git sources when the rule was declared. */
  sources: RuleSource[];
}

/** The schedules and event rules pipelines declare (`schedules`, `eventRules`). */
export class StartStore {
  private readonly schedules: Collection<ScheduleDoc>;
  private readonly rules: Collection<EventRuleDoc>;

  constructor(db: Db) {
    this.schedules = db.collection<ScheduleDoc>("schedules");
    this.rules = db.collection<EventRuleDoc>("event_rules");
  }

  async ensureIndexes(): Promise<void> {
    await this.schedules.createIndex({ nextRunAt: 1 });
    await this.schedules.createIndex({ pipelineName: 1 });
    await this.rules.createIndex({ upstreamPipeline: 1 });
    await this.rules.createIndex({ pipelineName: 1 });
  }

  /**
   * Makes the pipeline's schedules and rules match its declaration. An unchanged schedule keeps
   * its next tick (so an update never skips or repeats one); a new or changed one starts at the
   * first tick after `now`.
   */
  async syncPipeline(pipelineName: string, decl: PipelineDeclaration, now: number): Promise<void> {
    const keep = decl.schedules.map((s) => `${pipelineName}/${s.name}`);
    await this.schedules.deleteMany({ pipelineName, _id: { $nin: keep } });
    for (const s of decl.schedules) {
      const _id = `${pipelineName}/${s.name}`;
      if (await this.schedules.findOne({ _id, expression: s.expression, timeZone: s.timeZone })) continue;
      const parsed = parseSchedule(s.expression, s.timeZone, now);
      // Validation refused a bad one at UpdatePipeline; one stored by an older release is skipped.
      if ("problem" in parsed) continue;
      const next = parsed.next(now);
      if (next === undefined) continue;
      await this.schedules.replaceOne({ _id }, { pipelineName, name: s.name, expression: s.expression, timeZone: s.timeZone, anchorAt: now, nextRunAt: next }, { upsert: true });
    }
    const sources = gitSourcesOfFirstStage(decl);
    const rules = decl.eventRules.map((r) => ({
      _id: `${pipelineName}/${r.name}`,
      pipelineName,
      name: r.name,
      upstreamPipeline: r.pipelineName,
      states: r.states.length === 0 ? ["SUCCEEDED"] : [...r.states],
      sources,
    }));
    await this.rules.deleteMany({ pipelineName, _id: { $nin: rules.map((r) => r._id) } });
    for (const rule of rules) await this.rules.replaceOne({ _id: rule._id }, rule, { upsert: true });
  }

  async removePipeline(pipelineName: string): Promise<void> {
    await this.schedules.deleteMany({ pipelineName });
    await this.rules.deleteMany({ pipelineName });
  }

  async dueSchedules(now: number, limit: number): Promise<ScheduleDoc[]> {
    return this.schedules.find({ nextRunAt: { $lte: now } }).sort({ nextRunAt: 1 }).limit(limit).toArray();
  }

  /**
   * Moves a schedule past the tick it started (or gave up on), if no other replica did first.
   * Several missed ticks collapse into the one started: the next is the first after `now`.
   */
  async advanceSchedule(doc: ScheduleDoc, now: number, outcome: { executionId: string } | { error: string }): Promise<boolean> {
    const parsed = parseSchedule(doc.expression, doc.timeZone, doc.anchorAt);
    const next = "problem" in parsed ? undefined : parsed.next(now);
    const set: Partial<ScheduleDoc> = { nextRunAt: next ?? Number.MAX_SAFE_INTEGER, lastRunAt: doc.nextRunAt };
    if ("executionId" in outcome) set.lastExecutionId = outcome.executionId;
    const update = "error" in outcome ? { $set: { ...set, lastError: outcome.error } } : { $set: set, $unset: { lastError: "" as const } };
    const r = await this.schedules.updateOne({ _id: doc._id, nextRunAt: doc.nextRunAt }, update);
    return r.modifiedCount === 1;
  }

  async schedule(id: string): Promise<ScheduleDoc | null> {
    return this.schedules.findOne({ _id: id });
  }

  async rulesWatching(upstreamPipeline: string, state: string): Promise<EventRuleDoc[]> {
    const rules = await this.rules.find({ upstreamPipeline }).toArray();
    return rules.filter((r) => r.states.includes(state));
  }
}

/** The Git source actions of the first stage, with their repository and branch (polled or not). */
export function gitSourcesOfFirstStage(decl: PipelineDeclaration): RuleSource[] {
  return sourceActionsOf(decl.name, decl).flatMap((a) => (a.git === null || a.git.repositoryUrl === "" ? [] : [{ actionName: a.actionName, ...a.git }]));
}
