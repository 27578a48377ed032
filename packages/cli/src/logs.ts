import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createSluiceClient } from "@sluice/client";
import type { LogLine } from "@sluice/proto";
import type { ParsedArgs } from "./args.js";
import { requireFlag } from "./args.js";
import type { Connection } from "./connection.js";

/** Where `sluice logs` writes. */
export interface LogsOutput {
  /** Writes one line of the log (with its newline). */
  print(text: string): void;
}

/** What `sluice logs` saw. */
export interface LogsOutcome {
  /** Lines printed. */
  lines: number;
  /** The action's status in the last message (empty when none came). */
  status: string;
}

/**
 * One log line as `sluice logs` prints it: the job's own output as written; the runner's notes
 * (`system`) marked so they stand apart from it; stderr lines as they are (like a terminal).
 */
export function renderLogLine(line: LogLine, withTime = false): string {
  const time = withTime && line.time !== undefined ? `${timestampDate(line.time).toISOString()} ` : "";
  const mark = line.stream === "system" ? "[sluice] " : "";
  return `${time}${mark}${line.text}\n`;
}

/**
 * `sluice logs`: prints an action execution's log (GetActionLog) line by line as it arrives;
 * with `--follow`/`-f` it keeps printing while the action runs, and returns when it ends or when
 * `signal` aborts (Ctrl-C). `--timestamps` prefixes each line with the time the runner read it.
 */
export async function runLogs(args: ParsedArgs, conn: Connection, out: LogsOutput, signal?: AbortSignal): Promise<LogsOutcome> {
  const pipelineName = requireFlag(args, "pipeline-name");
  const actionExecutionId = requireFlag(args, "action-execution-id");
  const follow = args.flags["follow"] === true;
  const withTime = args.flags["timestamps"] === true;
  const client = createSluiceClient(conn);
  const outcome: LogsOutcome = { lines: 0, status: "" };
  try {
    const stream = client.pipelines.getActionLog({ pipelineName, actionExecutionId, follow }, signal === undefined ? {} : { signal });
    for await (const message of stream) {
      if (message.status !== "") outcome.status = message.status;
      for (const line of message.lines) {
        out.print(renderLogLine(line, withTime));
        outcome.lines++;
      }
    }
  } catch (err) {
    // Ctrl-C cancels the call: that is how a follow is meant to end early.
    if (signal?.aborted !== true) throw err;
  } finally {
    client.close();
  }
  return outcome;
}
