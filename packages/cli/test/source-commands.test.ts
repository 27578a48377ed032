// The webhook commands against a real gRPC server whose SourceService records what it was asked.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noopLogger } from "@sluice/domain";
import { createServer, createTokenAuthenticator } from "@sluice/grpc";
import type { SluiceServer } from "@sluice/grpc";
import { SourceService } from "@sluice/proto";
import type { ListWebhooksRequest, PutWebhookRequest } from "@sluice/proto";
import { parseArgs, runCommand, UsageError } from "../src/index.js";
import type { Connection } from "../src/index.js";

let server: SluiceServer;
let conn: Connection;
const dir = mkdtempSync(join(tmpdir(), "sluice-cli-webhook-"));
const puts: PutWebhookRequest[] = [];
const lists: ListWebhooksRequest[] = [];
const deleted: string[] = [];

beforeAll(async () => {
  server = createServer({
    logger: noopLogger,
    auth: createTokenAuthenticator([{ principal: "ops", roles: ["operator"], token: "ops-token" }]),
    permissions: Object.fromEntries(SourceService.methods.map((m) => [m.name, ["operator"]])),
  });
  server.add(SourceService, {
    putWebhook: (req) => {
      puts.push(req);
      return Promise.resolve({ webhook: { definition: req.webhook, url: "http://127.0.0.1:1/trigger?t=x&v=1" } });
    },
    listWebhooks: (req) => {
      lists.push(req);
      return Promise.resolve({ webhooks: [], nextToken: "next-page" });
    },
    deleteWebhook: (req) => {
      deleted.push(req.name);
      return Promise.resolve({});
    },
    registerWebhookWithThirdParty: () => Promise.resolve({}),
    deregisterWebhookWithThirdParty: () => Promise.resolve({}),
    listSourceStates: (req) => Promise.resolve({ sourceStates: [{ pipelineName: req.pipelineName, actionName: "Checkout", lastError: "unreachable", consecutiveFailures: 3 }], nextToken: "" }),
  });
  const port = await server.listen("127.0.0.1", 0);
  conn = { address: "127.0.0.1:1", token: "ops-token", sourceAddress: `127.0.0.1:${port}` };
});

afterAll(async () => {
  await server?.stop(1000);
  rmSync(dir, { recursive: true, force: true });
});

const run = (c: Connection, ...argv: string[]): Promise<string> => runCommand(parseArgs(argv), c);

describe("sluice webhook commands", () => {
  it("put-webhook reads AWS put-webhook JSON (capitalised authentication keys) and prints the URL", async () => {
    const file = join(dir, "webhook.json");
    writeFileSync(
      file,
      JSON.stringify({
        webhook: {
          name: "gh",
          targetPipeline: "web",
          targetAction: "Source",
          filters: [{ jsonPath: "$.ref", matchEquals: "refs/heads/{Branch}" }],
          authentication: "GITHUB_HMAC",
          authenticationConfiguration: { SecretToken: "s3cret" },
        },
      }),
    );
    const out = await run(conn, "put-webhook", "--cli-input-json", `file://${file}`);
    expect(JSON.parse(out)).toMatchObject({ webhook: { url: "http://127.0.0.1:1/trigger?t=x&v=1" } });
    expect(puts.at(-1)?.webhook?.authenticationConfiguration?.secretToken).toBe("s3cret");
    expect(puts.at(-1)?.webhook?.filters[0]?.matchEquals).toBe("refs/heads/{Branch}");
  });

  it("list-webhooks pages with AWS's capitalised NextToken; delete-webhook names the webhook", async () => {
    const out = await run(conn, "list-webhooks", "--max-results", "5", "--next-token", "t1");
    expect(JSON.parse(out)).toEqual({ NextToken: "next-page" });
    expect(lists.at(-1)?.maxResults).toBe(5);
    expect(lists.at(-1)?.nextToken).toBe("t1");
    expect(await run(conn, "delete-webhook", "--name", "gh")).toBe("deleted");
    expect(deleted).toEqual(["gh"]);
  });

  it("list-source-states shows each source's state, filtered by pipeline", async () => {
    const out = JSON.parse(await run(conn, "list-source-states", "--pipeline-name", "web")) as { sourceStates: { pipelineName: string; lastError: string; consecutiveFailures: number }[] };
    expect(out.sourceStates).toEqual([expect.objectContaining({ pipelineName: "web", lastError: "unreachable", consecutiveFailures: 3 })]);
  });

  it("says where the source poller is expected when no address is known", async () => {
    await expect(run({ address: conn.address, token: conn.token }, "list-webhooks")).rejects.toThrow(UsageError);
  });
});
