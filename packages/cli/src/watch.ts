import { createSluiceClient } from "@sluice/client";
import type { ParsedArgs } from "./args.js";
import { optionalFlag, requireFlag, UsageError } from "./args.js";
import type { Connection } from "./connection.js";
import { renderEvent, renderSnapshot } from "./render.js";

/** Where `sluice watch` writes. */
export interface WatchOutput {
  /** Writes one block of text (a rendered view). */
  print(text: string): void;
  /** Redraw in place (a terminal): clear the screen before each view. Default: append views. */
  readonly redraw?: boolean;
}

/** What `sluice watch` saw last. */
export interface WatchOutcome {
  executionId: string;
  /** The execution's status at the end (empty when the stream ended before the first snapshot). */
  status: string;
}

/** ANSI: cursor home and clear the screen. */
const CLEAR = "\u001b[H\u001b[2J";

/**
 * `sluice watch`: follows one execution (by default the pipeline's latest)
 * through WatchPipelineExecution, re-rendering the stage/action view on every
 * change with the event that caused it, until the execution ends or `signal`
 * aborts (Ctrl-C).
 */
export async function runWatch(args: ParsedArgs, conn: Connection, out: WatchOutput, signal?: AbortSignal): Promise<WatchOutcome> {
  const pipelineName = requireFlag(args, "pipeline-name");
  const client = createSluiceClient(conn);
  try {
    let executionId = optionalFlag(args, "pipeline-execution-id") ?? "";
    if (executionId === "") {
      const latest = await client.pipelines.listPipelineExecutions({ pipelineName, maxResults: 1 });
      executionId = latest.pipelineExecutionSummaries[0]?.pipelineExecutionId ?? "";
      if (executionId === "") throw new UsageError(`pipeline ${pipelineName} has no executions to watch`);
    }
    let status = "";
    const recent: string[] = [];
    const stream = client.pipelines.watchPipelineExecution({ pipelineName, pipelineExecutionId: executionId }, signal === undefined ? {} : { signal });
    try {
      for await (const message of stream) {
        if (message.event !== undefined) {
          recent.push(renderEvent(message.event));
          // The view keeps the last few changes under it.
          if (recent.length > 8) recent.shift();
        }
        if (message.snapshot === undefined) continue;
        status = message.snapshot.pipelineExecution?.status ?? status;
        const view = [renderSnapshot(message.snapshot), ...(recent.length > 0 ? ["", ...recent] : [])].join("\n");
        out.print(out.redraw === true ? `${CLEAR}${view}` : `${view}\n`);
      }
    } catch (err) {
      // Ctrl-C cancels the call: that is how a watch is meant to end early.
      if (signal?.aborted !== true) throw err;
    }
    return { executionId, status };
  } finally {
    client.close();
  }
}
