import { toJsonString } from "@bufbuild/protobuf";
import { createSourceClient, readRequestJson } from "@sluice/client";
import { ListSourceStatesResponseSchema, ListWebhooksResponseSchema, PutWebhookRequestSchema, PutWebhookResponseSchema } from "@sluice/proto";
import type { ParsedArgs } from "./args.js";
import { optionalFlag, requireFlag, UsageError } from "./args.js";
import type { Connection } from "./connection.js";
import { parseCount } from "./options.js";

const SOURCE_COMMANDS = ["put-webhook", "list-webhooks", "delete-webhook", "register-webhook-with-third-party", "deregister-webhook-with-third-party", "list-source-states"];

/**
 * The webhook and source-state commands, which go to the source poller rather than the orchestrator. Undefined
 * for any other command. `readInput` reads `file://path` or a path.
 */
export async function runSourceCommand(args: ParsedArgs, conn: Connection, readInput: (spec: string) => string): Promise<string | undefined> {
  if (args.command === undefined || !SOURCE_COMMANDS.includes(args.command)) return undefined;
  if (conn.sourceAddress === undefined) throw new UsageError("no source poller: pass --source-endpoint host:port, set SLUICE_SOURCE_ADDR, or run `npm start` first");
  const client = createSourceClient({ address: conn.sourceAddress, token: conn.token, ...(conn.tls === undefined ? {} : { tls: conn.tls }) });
  try {
    switch (args.command) {
      case "put-webhook": {
        const req = readRequestJson(PutWebhookRequestSchema, readInput(requireFlag(args, "cli-input-json")));
        return toJsonString(PutWebhookResponseSchema, await client.putWebhook(req), { prettySpaces: 2 });
      }
      case "list-webhooks": {
        const max = optionalFlag(args, "max-results");
        const res = await client.listWebhooks({ nextToken: optionalFlag(args, "next-token") ?? "", ...(max === undefined ? {} : { maxResults: parseCount("max-results", max) }) });
        return toJsonString(ListWebhooksResponseSchema, res, { prettySpaces: 2 });
      }
      case "delete-webhook":
        await client.deleteWebhook({ name: requireFlag(args, "name") });
        return "deleted";
      case "list-source-states": {
        const max = optionalFlag(args, "max-results");
        const res = await client.listSourceStates({
          pipelineName: optionalFlag(args, "pipeline-name") ?? "",
          nextToken: optionalFlag(args, "next-token") ?? "",
          ...(max === undefined ? {} : { maxResults: parseCount("max-results", max) }),
        });
        return toJsonString(ListSourceStatesResponseSchema, res, { prettySpaces: 2 });
      }
      case "register-webhook-with-third-party":
        await client.registerWebhookWithThirdParty({ webhookName: requireFlag(args, "webhook-name") });
        return "recorded as registered (Sluice does not call the Git host: add the webhook's URL and secret there yourself)";
      default:
        await client.deregisterWebhookWithThirdParty({ webhookName: requireFlag(args, "webhook-name") });
        return "recorded as deregistered";
    }
  } finally {
    client.close();
  }
}
