import { readFileSync } from "node:fs";
import { toJsonString } from "@bufbuild/protobuf";
import { createSluiceClient, readPipelineJson } from "@sluice/client";
import {
  GetPipelineExecutionResponseSchema,
  GetPipelineResponseSchema,
  GetPipelineStateResponseSchema,
  ListPipelineExecutionsResponseSchema,
  ListPipelinesResponseSchema,
} from "@sluice/proto";
import type { ParsedArgs } from "./args.js";
import { optionalFlag, requireFlag, UsageError } from "./args.js";
import type { Connection } from "./connection.js";
import { renderExecution, renderPipelineState } from "./render.js";

export const USAGE = `usage: sluice <command> [flags]

  dev                                    start a local cluster and run an example pipeline (npm start)
  create-pipeline --cli-input-json file://pipeline.json
                                         create a pipeline from an AWS create-pipeline JSON file
  update-pipeline --cli-input-json file://pipeline.json
  get-pipeline --name NAME [--version N]
  list-pipelines
  delete-pipeline --name NAME
  start-pipeline-execution --name NAME
  get-pipeline-state --name NAME [--json]
  get-pipeline-execution --pipeline-name NAME --pipeline-execution-id ID [--json]
  list-pipeline-executions --pipeline-name NAME
  put-approval-result --pipeline-name NAME --stage-name STAGE --action-name ACTION
                      --token TOKEN --status Approved|Rejected [--summary TEXT]

connection: --endpoint host:port and --auth-token, or SLUICE_ADDR and SLUICE_TOKEN,
or the cluster that \`npm start\` is running in this directory.`;

/** Reads `file://path` (AWS CLI style) or a plain path. */
function readInputFile(spec: string): string {
  return readFileSync(spec.startsWith("file://") ? spec.slice("file://".length) : spec, "utf8");
}

/** Runs one API command and returns what to print. */
export async function runCommand(args: ParsedArgs, conn: Connection): Promise<string> {
  const client = createSluiceClient({ address: conn.address, token: conn.token });
  const api = client.pipelines;
  const json = args.flags["json"] === true;
  try {
    switch (args.command) {
      case "create-pipeline":
      case "update-pipeline": {
        const req = readPipelineJson(readInputFile(requireFlag(args, "cli-input-json")));
        if (args.command === "create-pipeline") {
          const res = await api.createPipeline(req);
          return `created pipeline ${res.pipeline?.name ?? ""} (version ${res.pipeline?.version ?? 0}); its first execution has started`;
        }
        const res = await api.updatePipeline({ pipeline: req.pipeline });
        return `updated pipeline ${res.pipeline?.name ?? ""} to version ${res.pipeline?.version ?? 0}`;
      }
      case "get-pipeline": {
        const version = optionalFlag(args, "version");
        const res = await api.getPipeline({ name: requireFlag(args, "name"), ...(version ? { version: Number(version) } : {}) });
        return toJsonString(GetPipelineResponseSchema, res, { prettySpaces: 2 });
      }
      case "list-pipelines":
        return toJsonString(ListPipelinesResponseSchema, await api.listPipelines({}), { prettySpaces: 2 });
      case "delete-pipeline":
        await api.deletePipeline({ name: requireFlag(args, "name") });
        return "deleted";
      case "start-pipeline-execution": {
        const res = await api.startPipelineExecution({ name: requireFlag(args, "name") });
        return res.pipelineExecutionId;
      }
      case "get-pipeline-state": {
        const res = await api.getPipelineState({ name: requireFlag(args, "name") });
        return json ? toJsonString(GetPipelineStateResponseSchema, res, { prettySpaces: 2 }) : renderPipelineState(res);
      }
      case "get-pipeline-execution": {
        const res = await api.getPipelineExecution({
          pipelineName: requireFlag(args, "pipeline-name"),
          pipelineExecutionId: requireFlag(args, "pipeline-execution-id"),
        });
        if (json || !res.pipelineExecution) return toJsonString(GetPipelineExecutionResponseSchema, res, { prettySpaces: 2 });
        return renderExecution(res.pipelineExecution);
      }
      case "list-pipeline-executions": {
        const res = await api.listPipelineExecutions({ pipelineName: requireFlag(args, "pipeline-name") });
        return toJsonString(ListPipelineExecutionsResponseSchema, res, { prettySpaces: 2 });
      }
      case "put-approval-result": {
        const status = requireFlag(args, "status");
        const res = await api.putApprovalResult({
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          actionName: requireFlag(args, "action-name"),
          token: requireFlag(args, "token"),
          result: { status, summary: optionalFlag(args, "summary") ?? "" },
        });
        return `${status.toLowerCase()} at ${res.approvedAt ? new Date(Number(res.approvedAt.seconds) * 1000).toISOString() : "?"}`;
      }
      default:
        throw new UsageError(args.command ? `unknown command '${args.command}'` : "no command given");
    }
  } finally {
    client.close();
  }
}
