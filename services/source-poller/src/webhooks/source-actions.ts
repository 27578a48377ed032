import type { Collection, Db } from "mongodb";
import { gitSourceOf, resolveProvider } from "@sluice/domain";
import type { PipelineDeclaration } from "@sluice/proto";
import { triggerFilters } from "../git-sources.js";
import type { GitTriggerFilters } from "../git-sources.js";
import { normaliseRepositoryUrl } from "./repository-url.js";

/**
 * A source action of a pipeline's first stage, as the last declaration had it: what webhooks
 * target (and whose configuration fills `{Key}` in their filters), and what native push events
 * are matched against. Kept whatever PollForSourceChanges says: a webhook-driven source usually
 * turns polling off.
 */
export interface KnownSourceAction {
  _id: string; // "<pipeline>/<action>"
  pipelineName: string;
  actionName: string;
  /** `Category/Owner/Provider/Version`. */
  actionType: string;
  configuration: Record<string, string>;
  /** Set for Git-family sources. */
  git: { repositoryUrl: string; branch: string } | null;
  /** `normaliseRepositoryUrl(git.repositoryUrl)`, what push events are looked up by. */
  repositoryKey: string | null;
  /** The pipeline's V2 trigger for this action; null (or absent in older documents): none. */
  trigger?: GitTriggerFilters | null;
  /** The first Git source action of the first stage: its pushes to its branch carry `.sluice/pipeline.json`. */
  carriesDefinition?: boolean;
}

/** The `source_actions` collection, written only from declarations (events and resyncs). */
export class SourceActionStore {
  private readonly actions: Collection<KnownSourceAction>;

  constructor(db: Db) {
    this.actions = db.collection<KnownSourceAction>("source_actions");
  }

  async ensureIndexes(): Promise<void> {
    await this.actions.createIndex({ pipelineName: 1 });
    await this.actions.createIndex({ repositoryKey: 1 });
  }

  /** Makes the pipeline's entries match its declaration; undefined (deleted) removes them. */
  async syncPipeline(pipelineName: string, declaration: PipelineDeclaration | undefined): Promise<void> {
    const actions = declaration === undefined ? [] : sourceActionsOf(pipelineName, declaration);
    await this.actions.deleteMany({ pipelineName, _id: { $nin: actions.map((a) => a._id) } });
    for (const a of actions) await this.actions.replaceOne({ _id: a._id }, a, { upsert: true });
  }

  async get(pipelineName: string, actionName: string): Promise<KnownSourceAction | null> {
    return this.actions.findOne({ _id: `${pipelineName}/${actionName}` });
  }

  async ofPipeline(pipelineName: string): Promise<KnownSourceAction[]> {
    return this.actions.find({ pipelineName }).toArray();
  }

  /** Git sources whose repository is one of `keys` (normalised URLs). */
  async ofRepositories(keys: readonly string[]): Promise<KnownSourceAction[]> {
    if (keys.length === 0) return [];
    return this.actions.find({ repositoryKey: { $in: [...keys] } }).toArray();
  }

  async pipelineNames(): Promise<string[]> {
    const docs = await this.actions.find({}, { projection: { pipelineName: 1 } }).toArray();
    return [...new Set(docs.map((d) => d.pipelineName))];
  }
}

/** Every action of the first stage (where all source actions sit), with its configuration. */
export function sourceActionsOf(pipelineName: string, decl: PipelineDeclaration): KnownSourceAction[] {
  const first = decl.stages[0];
  if (!first) return [];
  // Validation refuses triggers on V1 pipelines; a stored one is ignored there all the same.
  const triggers = decl.pipelineType === "V2" ? decl.triggers : [];
  const firstGit = first.actions.find((a) => resolveProvider(a.actionTypeId)?.builtIn === "Git");
  return first.actions
    .filter((a) => a.actionTypeId?.category === "Source")
    .map((a) => {
      const id = a.actionTypeId;
      const isGit = resolveProvider(id)?.builtIn === "Git";
      const git = isGit ? gitSourceOf(a.configuration) : null;
      return {
        _id: `${pipelineName}/${a.name}`,
        pipelineName,
        actionName: a.name,
        actionType: `${id?.category ?? ""}/${id?.owner ?? ""}/${id?.provider ?? ""}/${id?.version ?? ""}`,
        configuration: { ...a.configuration },
        git,
        repositoryKey: git === null ? null : (normaliseRepositoryUrl(git.repositoryUrl) ?? null),
        trigger: ((t) => (t === undefined ? null : triggerFilters(t)))(triggers.find((t) => t.gitConfiguration?.sourceActionName === a.name)?.gitConfiguration),
        ...(a === firstGit ? { carriesDefinition: true } : {}),
      };
    });
}
