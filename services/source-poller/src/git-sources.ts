import type { PipelineDeclaration } from "@sluice/proto";
import { gitSourceOf, resolveProvider } from "@sluice/domain";
import type { GitSource } from "./cursor-store.js";

/** The Git source actions of a declaration (they all sit in the first stage). */
export function gitSourcesOf(decl: PipelineDeclaration): GitSource[] {
  const first = decl.stages[0];
  if (!first) return [];
  const sources: GitSource[] = [];
  for (const action of first.actions) {
    if (!action.actionTypeId || resolveProvider(action.actionTypeId)?.builtIn !== "Git") continue;
    // As AWS: PollForSourceChanges (CodeCommit, S3) or DetectChanges (connections) "false" means
    // the source only changes when someone starts the pipeline.
    const { PollForSourceChanges: poll, DetectChanges: detect } = action.configuration;
    if (poll === "false" || detect === "false") continue;
    const source = gitSourceOf(action.configuration);
    if (source.repositoryUrl) sources.push({ actionName: action.name, ...source });
  }
  return sources;
}
