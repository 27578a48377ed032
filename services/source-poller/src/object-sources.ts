import { isObjectSource, objectSourceOf, resolveProvider } from "@sluice/domain";
import type { PipelineDeclaration } from "@sluice/proto";

/** One ObjectStore (AWS S3) source action the poller watches. */
export interface ObjectSource {
  actionName: string;
  bucket: string;
  objectKey: string;
}

/**
 * The first stage's ObjectStore sources that poll (PollForSourceChanges not "false", as AWS's
 * default). Sources that do not poll start only by StartPipelineExecution or a webhook.
 */
export function objectSourcesOf(declaration: PipelineDeclaration): ObjectSource[] {
  const out: ObjectSource[] = [];
  for (const action of declaration.stages[0]?.actions ?? []) {
    if (!isObjectSource(resolveProvider(action.actionTypeId))) continue;
    const { bucket, objectKey, poll } = objectSourceOf(action.configuration);
    if (!poll || bucket === "" || objectKey === "") continue;
    out.push({ actionName: action.name, bucket, objectKey });
  }
  return out;
}
