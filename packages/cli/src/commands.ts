import { readFileSync } from "node:fs";
import { toJsonString } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { createSluiceClient, readPipelineJson, readRequestJson } from "@sluice/client";
import {
  CreateCustomActionTypeRequestSchema,
  CreateCustomActionTypeResponseSchema,
  GetActionTypeResponseSchema,
  ListActionTypesResponseSchema,
  UpdateActionTypeRequestSchema,
  GetPipelineExecutionResponseSchema,
  GetPipelineResponseSchema,
  GetPipelineStateResponseSchema,
  ListActionExecutionsResponseSchema,
  ListPipelineExecutionsResponseSchema,
  ListPipelinesResponseSchema,
} from "@sluice/proto";
import type { ParsedArgs } from "./args.js";
import { optionalFlag, requireFlag, UsageError } from "./args.js";
import type { Connection } from "./connection.js";
import { parseCount, parseSourceRevisions, parseVariables } from "./options.js";
import { renderExecution, renderPipelineState } from "./render.js";
import { runSourceCommand } from "./source-commands.js";

export const USAGE = `usage: sluice <command> [flags]

  create-pipeline --cli-input-json file://pipeline.json
                                         create a pipeline from an AWS create-pipeline JSON file
  update-pipeline --cli-input-json file://pipeline.json
  get-pipeline --name NAME [--version N]
  list-pipelines
  delete-pipeline --name NAME
  start-pipeline-execution --name NAME [--variables name=value,...]
                      [--source-revisions ACTION=COMMIT_ID:sha,...] [--client-request-token TOKEN]
                                         prints the execution id (the same one again for a repeated token)
  stop-pipeline-execution --pipeline-name NAME --pipeline-execution-id ID [--abandon] [--reason TEXT]
                                         stop and wait for running actions, or --abandon them
  retry-stage-execution --pipeline-name NAME --stage-name STAGE --pipeline-execution-id ID
                      --retry-mode FAILED_ACTIONS|ALL_ACTIONS
  retry-action-execution --pipeline-name NAME --stage-name STAGE --action-name ACTION
                      --pipeline-execution-id ID
                                         rerun one action (failed or succeeded) of the stage's latest execution
  override-stage-condition --pipeline-name NAME --stage-name STAGE --pipeline-execution-id ID
                      --condition-type BEFORE_ENTRY|ON_SUCCESS
                                         end a running (or lift a failed) condition check so the stage proceeds
  rollback-stage --pipeline-name NAME --stage-name STAGE --target-pipeline-execution-id ID
                                         rerun a stage with an earlier successful execution's inputs;
                                         prints the new ROLLBACK execution's id
  put-action-revision --pipeline-name NAME --stage-name STAGE --action-name ACTION --revision-id REV --revision-change-id TEXT
                                         hand a source action a new revision; prints
                                         "new <execution id>" or "seen <execution id>"
  disable-stage-transition --pipeline-name NAME --stage-name STAGE --reason TEXT [--transition-type Inbound]
  enable-stage-transition --pipeline-name NAME --stage-name STAGE [--transition-type Inbound]
  get-pipeline-state --name NAME [--json]
  get-pipeline-execution --pipeline-name NAME --pipeline-execution-id ID [--json]
  list-pipeline-executions --pipeline-name NAME [--succeeded-in-stage STAGE] [--max-results N] [--next-token T]
  list-action-executions --pipeline-name NAME [--pipeline-execution-id ID] [--max-results N] [--next-token T]
                                         every attempt of every action, with inputs, outputs and errors
  watch --pipeline-name NAME [--pipeline-execution-id ID]
                                         live stage/action view of an execution (default: the latest)
                                         until it ends; exit code 0 if it succeeded, 3 otherwise
  logs --pipeline-name NAME --action-execution-id ID [-f|--follow] [--timestamps]
                                         an action execution's log (ids: list-action-executions,
                                         get-pipeline-state); -f prints lines as they are written
                                         until the action ends (exit code 0 if it succeeded, 3 otherwise)
  put-approval-result --pipeline-name NAME --stage-name STAGE --action-name ACTION
                      --token TOKEN --status Approved|Rejected [--summary TEXT]
  create-custom-action-type --cli-input-json file://type.json
                                         declare a custom action type (its jobs go to job workers)
  update-action-type --cli-input-json file://declaration.json
  list-action-types [--action-owner-filter AWS|ThirdParty|Custom] [--next-token T]
  get-action-type --category C --owner O --provider P --action-version V
  delete-custom-action-type --category C --provider P --action-version V
  put-webhook --cli-input-json file://webhook.json
                                         create or replace a webhook (AWS put-webhook JSON); prints its URL
  list-webhooks [--max-results N] [--next-token T]
  delete-webhook --name NAME
  register-webhook-with-third-party --webhook-name NAME
  deregister-webhook-with-third-party --webhook-name NAME
  list-source-states [--pipeline-name NAME] [--max-results N] [--next-token T]
                                         each polled source: last revision, next poll, failures, holder
                                         webhook and source-state commands go to the source poller: --source-endpoint
                                         host:port, SLUICE_SOURCE_ADDR, or the \`npm start\` cluster's

connection: --endpoint host:port and --auth-token, or SLUICE_ADDR and SLUICE_TOKEN,
or the cluster that \`npm start\` is running in this directory.`;

/** `--max-results` and `--next-token`, when given. */
function paging(args: ParsedArgs): { maxResults?: number; nextToken?: string } {
  const max = optionalFlag(args, "max-results");
  const token = optionalFlag(args, "next-token");
  return { ...(max === undefined ? {} : { maxResults: parseCount("max-results", max) }), ...(token === undefined ? {} : { nextToken: token }) };
}

/** Reads `file://path` (AWS CLI style) or a plain path. */
function readInputFile(spec: string): string {
  return readFileSync(spec.startsWith("file://") ? spec.slice("file://".length) : spec, "utf8");
}

/** Runs one API command and returns what to print. */
export async function runCommand(args: ParsedArgs, conn: Connection): Promise<string> {
  const sourceOutput = await runSourceCommand(args, conn, readInputFile);
  if (sourceOutput !== undefined) return sourceOutput;
  const client = createSluiceClient(conn);
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
        const variables = optionalFlag(args, "variables");
        const sourceRevisions = optionalFlag(args, "source-revisions");
        const res = await api.startPipelineExecution({
          name: requireFlag(args, "name"),
          ...(variables === undefined ? {} : { variables: parseVariables("variables", variables) }),
          ...(sourceRevisions === undefined ? {} : { sourceRevisions: parseSourceRevisions("source-revisions", sourceRevisions) }),
          clientRequestToken: optionalFlag(args, "client-request-token") ?? "",
        });
        return res.pipelineExecutionId;
      }
      case "stop-pipeline-execution": {
        const abandon = args.flags["abandon"] === true;
        const res = await api.stopPipelineExecution({
          pipelineName: requireFlag(args, "pipeline-name"),
          pipelineExecutionId: requireFlag(args, "pipeline-execution-id"),
          abandon,
          reason: optionalFlag(args, "reason") ?? "",
        });
        return abandon ? `abandoned ${res.pipelineExecutionId}` : `stopping ${res.pipelineExecutionId} (running actions finish first)`;
      }
      case "retry-stage-execution": {
        const res = await api.retryStageExecution({
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          pipelineExecutionId: requireFlag(args, "pipeline-execution-id"),
          retryMode: requireFlag(args, "retry-mode"),
        });
        return `retrying stage ${requireFlag(args, "stage-name")} of ${res.pipelineExecutionId}`;
      }
      case "retry-action-execution": {
        const res = await api.retryActionExecution({
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          actionName: requireFlag(args, "action-name"),
          pipelineExecutionId: requireFlag(args, "pipeline-execution-id"),
        });
        return `retrying action ${requireFlag(args, "action-name")} of ${res.pipelineExecutionId}`;
      }
      case "override-stage-condition": {
        const conditionType = requireFlag(args, "condition-type");
        await api.overrideStageCondition({
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          pipelineExecutionId: requireFlag(args, "pipeline-execution-id"),
          conditionType,
        });
        return `${conditionType} condition of stage ${requireFlag(args, "stage-name")} overridden`;
      }
      case "rollback-stage": {
        const res = await api.rollbackStage({
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          targetPipelineExecutionId: requireFlag(args, "target-pipeline-execution-id"),
        });
        return res.pipelineExecutionId;
      }
      case "put-action-revision": {
        const res = await api.putActionRevision({
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          actionName: requireFlag(args, "action-name"),
          actionRevision: { revisionId: requireFlag(args, "revision-id"), revisionChangeId: requireFlag(args, "revision-change-id"), created: timestampNow() },
        });
        return `${res.newRevision ? "new" : "seen"} ${res.pipelineExecutionId}`.trimEnd();
      }
      case "disable-stage-transition":
      case "enable-stage-transition": {
        const target = {
          pipelineName: requireFlag(args, "pipeline-name"),
          stageName: requireFlag(args, "stage-name"),
          transitionType: optionalFlag(args, "transition-type") ?? "Inbound",
        };
        if (args.command === "disable-stage-transition") {
          await api.disableStageTransition({ ...target, reason: requireFlag(args, "reason") });
          return `transition into ${target.stageName} disabled`;
        }
        await api.enableStageTransition(target);
        return `transition into ${target.stageName} enabled`;
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
        const stage = optionalFlag(args, "succeeded-in-stage");
        const res = await api.listPipelineExecutions({
          pipelineName: requireFlag(args, "pipeline-name"),
          ...(stage === undefined ? {} : { filter: { succeededInStage: { stageName: stage } } }),
          ...paging(args),
        });
        return toJsonString(ListPipelineExecutionsResponseSchema, res, { prettySpaces: 2 });
      }
      case "list-action-executions": {
        const executionId = optionalFlag(args, "pipeline-execution-id");
        const res = await api.listActionExecutions({
          pipelineName: requireFlag(args, "pipeline-name"),
          ...(executionId === undefined ? {} : { filter: { pipelineExecutionId: executionId } }),
          ...paging(args),
        });
        return toJsonString(ListActionExecutionsResponseSchema, res, { prettySpaces: 2 });
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
      case "create-custom-action-type": {
        const req = readRequestJson(CreateCustomActionTypeRequestSchema, readInputFile(requireFlag(args, "cli-input-json")));
        return toJsonString(CreateCustomActionTypeResponseSchema, await client.actionTypes.createCustomActionType(req), { prettySpaces: 2 });
      }
      case "update-action-type": {
        const req = readRequestJson(UpdateActionTypeRequestSchema, readInputFile(requireFlag(args, "cli-input-json")));
        await client.actionTypes.updateActionType(req);
        return "updated";
      }
      case "list-action-types": {
        const token = optionalFlag(args, "next-token");
        const res = await client.actionTypes.listActionTypes({ actionOwnerFilter: optionalFlag(args, "action-owner-filter") ?? "", ...(token === undefined ? {} : { nextToken: token }) });
        return toJsonString(ListActionTypesResponseSchema, res, { prettySpaces: 2 });
      }
      case "get-action-type": {
        const res = await client.actionTypes.getActionType({
          category: requireFlag(args, "category"),
          owner: requireFlag(args, "owner"),
          provider: requireFlag(args, "provider"),
          version: requireFlag(args, "action-version"),
        });
        return toJsonString(GetActionTypeResponseSchema, res, { prettySpaces: 2 });
      }
      case "delete-custom-action-type":
        await client.actionTypes.deleteCustomActionType({ category: requireFlag(args, "category"), provider: requireFlag(args, "provider"), version: requireFlag(args, "action-version") });
        return "deleted";
      default:
        throw new UsageError(args.command ? `unknown command '${args.command}'` : "no command given");
    }
  } finally {
    client.close();
  }
}
