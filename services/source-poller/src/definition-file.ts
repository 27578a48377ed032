import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PipelineDefinitionFileSchema } from "@sluice/proto";
import type { GitMirrors } from "./git-mirror.js";

/** Where a repository declares its own pipeline (AWS create-pipeline JSON). */
export const DEFINITION_PATH = ".sluice/pipeline.json";
/** A pipeline declaration is far smaller (the declaration limit is 100 KB); anything past this is refused unread. */
export const MAX_DEFINITION_BYTES = 256 * 1024;

/** SourceChanged.definition: the file's text or why it could not be taken. */
export type DefinitionFile = MessageInitShape<typeof PipelineDefinitionFileSchema>;

/**
 * `.sluice/pipeline.json` at `commit` of `branch`, or undefined when the commit has none (the
 * pipeline stays as it is). Rejects when git fails: the poll then fails and is retried, so a
 * change is never started on a definition nobody could read.
 */
export async function readDefinition(mirrors: GitMirrors, url: string, branch: string, commit: string): Promise<DefinitionFile | undefined> {
  const file = await mirrors.readFile(url, branch, commit, DEFINITION_PATH, MAX_DEFINITION_BYTES);
  switch (file.kind) {
    case "absent":
      return undefined;
    case "too large":
      return { problem: `${DEFINITION_PATH} is ${file.bytes} bytes; at most ${MAX_DEFINITION_BYTES} are read` };
    case "text":
      return { text: file.text };
  }
}
