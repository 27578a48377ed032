import type { GitConfiguration, GitFilterCriteria, PipelineDeclaration } from "@sluice/proto";
import { gitSourceOf, resolveProvider } from "@sluice/domain";
import type { GitFilterCriteriaLike, GitTriggerFiltersLike } from "@sluice/domain";
import type { GitSource } from "./cursor-store.js";

/** A trigger's filters as stored in a cursor: plain arrays, absent categories left out. */
export interface GitTriggerFilters extends GitTriggerFiltersLike {
  readonly push: { tags?: GitFilterCriteriaLike; branches?: GitFilterCriteriaLike; filePaths?: GitFilterCriteriaLike }[];
  readonly pullRequest: { events: string[]; branches?: GitFilterCriteriaLike; filePaths?: GitFilterCriteriaLike }[];
}

/** The Git source actions of a declaration (they all sit in the first stage), each with its trigger. */
export function gitSourcesOf(decl: PipelineDeclaration): GitSource[] {
  const first = decl.stages[0];
  if (!first) return [];
  // Validation refuses triggers on V1 pipelines; a stored one is ignored there all the same.
  const triggers = decl.pipelineType === "V2" ? decl.triggers : [];
  const sources: GitSource[] = [];
  let firstGit = true;
  for (const action of first.actions) {
    if (!action.actionTypeId || resolveProvider(action.actionTypeId)?.builtIn !== "Git") continue;
    // One source decides the pipeline definition, so two repositories never fight over it.
    const carriesDefinition = firstGit;
    firstGit = false;
    const git = triggers.find((t) => t.gitConfiguration?.sourceActionName === action.name)?.gitConfiguration;
    // As AWS: PollForSourceChanges (CodeCommit, S3) or DetectChanges (connections) "false" means
    // the source only changes when someone starts the pipeline — unless a trigger says otherwise.
    const { PollForSourceChanges: poll, DetectChanges: detect } = action.configuration;
    if (git === undefined && (poll === "false" || detect === "false")) continue;
    const source = gitSourceOf(action.configuration);
    if (source.repositoryUrl) sources.push({ actionName: action.name, ...source, trigger: git === undefined ? null : triggerFilters(git), ...(carriesDefinition ? { carriesDefinition } : {}) });
  }
  return sources;
}

/** The plain form of a proto GitConfiguration, keys always in the same order (cursors compare it as JSON). */
export function triggerFilters(git: GitConfiguration): GitTriggerFilters {
  const plain = (c: GitFilterCriteria | undefined): GitFilterCriteriaLike | undefined => (c === undefined ? undefined : { includes: [...c.includes], excludes: [...c.excludes] });
  return {
    push: git.push.map((p) => {
      const out: GitTriggerFilters["push"][number] = {};
      const [tags, branches, filePaths] = [plain(p.tags), plain(p.branches), plain(p.filePaths)];
      if (tags) out.tags = tags;
      if (branches) out.branches = branches;
      if (filePaths) out.filePaths = filePaths;
      return out;
    }),
    pullRequest: git.pullRequest.map((p) => {
      const out: GitTriggerFilters["pullRequest"][number] = { events: [...p.events] };
      const [branches, filePaths] = [plain(p.branches), plain(p.filePaths)];
      if (branches) out.branches = branches;
      if (filePaths) out.filePaths = filePaths;
      return out;
    }),
  };
}
