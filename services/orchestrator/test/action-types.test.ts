// ActionTypeService on real MongoDB and NATS: custom action types are declared, listed, read,
// updated and deleted with AWS's shapes and rules, and pipelines using one are judged by its
// declaration; secret properties stay masked and keep their stored value when sent back masked.
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { clone } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ActionTypeDeclarationSchema, ActionTypeService } from "@sluice/proto";
import type { CreateCustomActionTypeRequestSchema, PipelineDeclarationSchema } from "@sluice/proto";
import { startOrchestrator } from "../src/service.js";
import type { Orchestrator } from "../src/service.js";
import { TOKENS, clientsFor, dropDatabase, failure, isolation, testConfig } from "./helpers.js";
import type { Clients } from "./helpers.js";

const servers = inject("servers");
const iso = isolation("acttypes");

let service: Orchestrator | undefined;
let clients: Clients;
let ops: Client<typeof ActionTypeService>;
let viewer: Client<typeof ActionTypeService>;

beforeAll(async () => {
  service = await startOrchestrator(testConfig(servers, iso, { SLUICE_AUTH_TOKENS: TOKENS }));
  clients = clientsFor(service.port);
  const address = `127.0.0.1:${service.port}`;
  ops = createClient(ActionTypeService, address, { token: "op-token", deadlineMs: 20_000 });
  viewer = createClient(ActionTypeService, address, { token: "viewer-token", deadlineMs: 20_000 });
});

afterAll(async () => {
  ops.close();
  viewer.close();
  clients.close();
  await service?.stop(5_000);
  await dropDatabase(servers.mongoUrl, iso.dbName);
});

type CreateInit = MessageInitShape<typeof CreateCustomActionTypeRequestSchema>;

/** A deploy type as `aws codepipeline create-custom-action-type --cli-input-json` takes it. */
function deployer(version = "1", over: Partial<CreateInit> = {}): CreateInit {
  const base: CreateInit = {
    category: "Deploy",
    provider: "Deployer",
    version,
    settings: { executionUrlTemplate: "https://deploy.example/runs/{ExternalExecutionId}", entityUrlTemplate: "https://deploy.example/envs/{Config:Environment}" },
    configurationProperties: [
      { name: "Environment", required: true, key: true, secret: false, queryable: true, description: "where to deploy", type: "String" },
      { name: "ApiKey", required: true, key: false, secret: true, queryable: false, type: "String" },
      { name: "Replicas", required: false, key: false, secret: false, queryable: false, type: "Number" },
    ],
    inputArtifactDetails: { minimumCount: 1, maximumCount: 1 },
    outputArtifactDetails: { minimumCount: 0, maximumCount: 0 },
    tags: [{ key: "team", value: "platform" }],
  };
  return Object.assign(base, over);
}

type DeclarationInit = MessageInitShape<typeof PipelineDeclarationSchema>;

/** Source → Deploy with one action of Custom/Deploy/Deployer/`version`. */
function pipeline(name: string, configuration: Record<string, string>, version = "1"): DeclarationInit {
  return {
    name,
    stages: [
      {
        name: "Source",
        actions: [
          {
            name: "Checkout",
            actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
            configuration: { RepositoryUrl: "file:///tmp/repo.git" },
            outputArtifacts: [{ name: "Src" }],
          },
        ],
      },
      {
        name: "Deploy",
        actions: [{ name: "Ship", actionTypeId: { category: "Deploy", owner: "Custom", provider: "Deployer", version }, configuration, inputArtifacts: [{ name: "Src" }] }],
      },
    ],
  };
}

describe("ActionTypeService", () => {
  it("refuses a malformed type, naming every field", async () => {
    const err = await failure(
      ops.createCustomActionType(
        deployer("1", {
          provider: "no spaces",
          configurationProperties: [{ name: "Environment", required: false, key: false, secret: true, queryable: true, type: "String" }],
          outputArtifactDetails: { minimumCount: 0, maximumCount: 9 },
        }),
      ),
    );
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations.map((v) => v.field)).toEqual([
      "provider",
      "outputArtifactDetails.maximumCount",
      "configurationProperties[0].queryable",
      "configurationProperties[0].queryable",
      "settings.entityUrlTemplate",
    ]);
    const missing = await failure(ops.createCustomActionType({ category: "Deploy", provider: "X", version: "1" }));
    expect(missing.violations.map((v) => v.field)).toEqual(["inputArtifactDetails", "outputArtifactDetails"]);
  });

  it("lets operators declare types, and viewers only read them", async () => {
    const denied = await failure(viewer.createCustomActionType(deployer()));
    expect(denied.errorCode).toBe("AccessDeniedException");
    const created = await ops.createCustomActionType(deployer());
    expect(created.actionType).toMatchObject({
      id: { category: "Deploy", owner: "Custom", provider: "Deployer", version: "1" },
      actionConfigurationProperties: [{ name: "Environment", queryable: true }, { name: "ApiKey", secret: true }, { name: "Replicas", type: "Number" }],
      inputArtifactDetails: { minimumCount: 1, maximumCount: 1 },
    });
    expect(created.tags).toEqual([expect.objectContaining({ key: "team", value: "platform" })]);
    // The same declaration again is answered again; another one under the same version is refused.
    expect((await ops.createCustomActionType(deployer())).actionType?.id?.provider).toBe("Deployer");
    const changed = await failure(ops.createCustomActionType(deployer("1", { inputArtifactDetails: { minimumCount: 0, maximumCount: 2 } })));
    expect(changed.violations).toEqual([{ field: "version", message: "Custom/Deploy/Deployer/1 already exists with another definition: change it with UpdateActionType, or declare a new version" }]);
  });

  it("lists built-in and custom types, filtered by owner", async () => {
    const all = await viewer.listActionTypes({});
    const ids = all.actionTypes.map((t) => `${t.id?.owner}/${t.id?.category}/${t.id?.provider}`);
    expect(ids).toEqual(expect.arrayContaining(["AWS/Source/Git", "AWS/Build/Commands", "AWS/Approval/Manual", "ThirdParty/Source/GitHub", "Custom/Deploy/Deployer"]));
    const custom = await viewer.listActionTypes({ actionOwnerFilter: "Custom" });
    expect(custom.actionTypes.map((t) => t.id?.provider)).toEqual(["Deployer"]);
    const bad = await failure(viewer.listActionTypes({ actionOwnerFilter: "Amazon" }));
    expect(bad.violations.map((v) => v.field)).toEqual(["actionOwnerFilter"]);
    expect((await failure(viewer.listActionTypes({ nextToken: "garbage!" }))).errorCode).toBe("InvalidNextTokenException");
  });

  it("GetActionType answers AWS's declaration shape for custom and built-in types", async () => {
    const got = await viewer.getActionType({ category: "Deploy", owner: "Custom", provider: "Deployer", version: "1" });
    expect(got.actionType).toMatchObject({
      executor: { type: "JobWorker", jobTimeout: 0 },
      properties: [{ name: "Environment", optional: false, queryable: true }, { name: "ApiKey", noEcho: true }, { name: "Replicas", optional: true }],
      urls: { executionUrlTemplate: "https://deploy.example/runs/{ExternalExecutionId}" },
    });
    const git = await viewer.getActionType({ category: "Source", owner: "AWS", provider: "Git", version: "1" });
    expect(git.actionType?.properties.map((p) => p.name)).toContain("RepositoryUrl");
    const unknown = await failure(viewer.getActionType({ category: "Deploy", owner: "Custom", provider: "Nope", version: "1" }));
    expect(unknown.errorCode).toBe("ActionTypeNotFoundException");
  });

  it("judges pipelines by the declared type", async () => {
    const bad = await failure(clients.ops.createPipeline({ pipeline: pipeline("custom-bad", { Environment: "prod east", Replicas: "many", Colour: "red" }) }));
    expect(bad.errorCode).toBe("InvalidStructureException");
    const at = "pipeline.stages[1].actions[0].configuration";
    expect(bad.violations.map((v) => v.field)).toEqual([`${at}.Environment`, `${at}.Replicas`, `${at}.Colour`, `${at}.ApiKey`]);
    const undeclared = await failure(clients.ops.createPipeline({ pipeline: pipeline("custom-undeclared", { Environment: "prod", ApiKey: "k" }, "9") }));
    expect(undeclared.violations).toEqual([
      { field: "pipeline.stages[1].actions[0].actionTypeId.provider", message: "custom action type Custom/Deploy/Deployer/9 is not declared (or was deleted): declare it with CreateCustomActionType" },
    ]);
  });

  it("masks secret properties in GetPipeline, and keeps the stored value when `****` is sent back", async () => {
    await clients.ops.createPipeline({ pipeline: pipeline("custom-secret", { Environment: "prod", ApiKey: "sk-live-4242" }) });
    const shown = await clients.viewer.getPipeline({ name: "custom-secret" });
    const ship = shown.pipeline?.stages[1]?.actions[0];
    expect(ship?.configuration).toEqual({ Environment: "prod", ApiKey: "****" });
    expect(JSON.stringify(shown, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v))).not.toContain("sk-live-4242");
    // Sent back as shown: the stored secret stays (the run's job would carry it to the worker).
    if (shown.pipeline === undefined) throw new Error("no pipeline");
    const updated = await clients.ops.updatePipeline({ pipeline: shown.pipeline });
    expect(updated.pipeline?.version).toBe(2);
    const spec = (await service?.runtime.read("custom-secret"))?.spec;
    expect(spec?.stages[1]?.actions[0]).toMatchObject({ builtIn: "Custom", configuration: { ApiKey: "sk-live-4242" }, secretConfiguration: ["ApiKey"], timeoutInMinutes: 24 * 60 });
  });

  it("UpdateActionType replaces a custom declaration and refuses built-in types", async () => {
    const { actionType } = await ops.getActionType({ category: "Deploy", owner: "Custom", provider: "Deployer", version: "1" });
    if (actionType === undefined) throw new Error("no declaration");
    actionType.description = "deploys to our fleet";
    if (actionType.executor !== undefined) actionType.executor.jobTimeout = 1800;
    const broken = clone(ActionTypeDeclarationSchema, actionType);
    if (broken.executor !== undefined) broken.executor.jobTimeout = 5;
    const bad = await failure(ops.updateActionType({ actionType: broken }));
    expect(bad.violations.map((v) => v.field)).toEqual(["actionType.executor.jobTimeout"]);
    await ops.updateActionType({ actionType });
    const after = await viewer.getActionType({ category: "Deploy", owner: "Custom", provider: "Deployer", version: "1" });
    expect(after.actionType).toMatchObject({ description: "deploys to our fleet", executor: { jobTimeout: 1800 } });
    // The property types CreateCustomActionType gave survive the update (ActionTypeProperty has none).
    const listed = await viewer.listActionTypes({ actionOwnerFilter: "Custom" });
    expect(listed.actionTypes[0]?.actionConfigurationProperties.find((p) => p.name === "Replicas")?.type).toBe("Number");
    if (actionType.id === undefined) throw new Error("no id");
    Object.assign(actionType.id, { category: "Source", owner: "AWS", provider: "Git", version: "1" });
    const builtIn = await failure(ops.updateActionType({ actionType }));
    expect(builtIn.errorCode).toBe("RequestFailedException");
  });

  it("DeleteCustomActionType retires a type: pipelines can no longer declare it, and only the identical declaration revives it", async () => {
    await ops.createCustomActionType(deployer("2"));
    await ops.deleteCustomActionType({ category: "Deploy", provider: "Deployer", version: "2" });
    // Deleting again, or an unknown type, succeeds as AWS.
    await ops.deleteCustomActionType({ category: "Deploy", provider: "Deployer", version: "2" });
    const gone = await failure(clients.ops.createPipeline({ pipeline: pipeline("custom-deleted", { Environment: "prod", ApiKey: "k" }, "2") }));
    expect(gone.violations.map((v) => v.field)).toEqual(["pipeline.stages[1].actions[0].actionTypeId.provider"]);
    expect((await failure(viewer.getActionType({ category: "Deploy", owner: "Custom", provider: "Deployer", version: "2" }))).errorCode).toBe("ActionTypeNotFoundException");
    const different = await failure(ops.createCustomActionType(deployer("2", { outputArtifactDetails: { minimumCount: 0, maximumCount: 1 } })));
    expect(different.violations[0]?.message).toMatch(/was deleted; a deleted version is revived only with its identical definition/);
    await ops.createCustomActionType(deployer("2"));
    await clients.ops.createPipeline({ pipeline: pipeline("custom-revived", { Environment: "prod", ApiKey: "k" }, "2") });
  });
});
