import type { PipelineDeclaration } from "@sluice/proto";
import { resolveProvider } from "@sluice/domain";
import type { GitSource } from "./cursor-store.js";

/** The Git source actions of a declaration (they all sit in the first stage). */
export function gitSourcesOf(decl: PipelineDeclaration): GitSource[] {
  const first = decl.stages[0];
  if (!first) return [];
  const sources: GitSource[] = [];
  for (const action of first.actions) {
    if (!action.actionTypeId || resolveProvider(action.actionTypeId)?.builtIn !== "Git") continue;
    const repositoryUrl = action.configuration["RepositoryUrl"];
    if (!repositoryUrl) continue;
    sources.push({ actionName: action.name, repositoryUrl, branch: action.configuration["BranchName"] ?? "main" });
  }
  return sources;
}
