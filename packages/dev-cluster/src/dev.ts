import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clusterBusAuthorization, createCatalog, generateBusAuthorization } from "@sluice/bus";
import { DEV_STATE_FILE, renderPipelineState } from "@sluice/cli";
import type { DevState } from "@sluice/cli";
import { createSluiceClient, isRpcError, readPipelineJson } from "@sluice/client";
import { startCluster, startServers } from "@sluice/testkit";
import { EXAMPLE_BUCKET, EXAMPLE_PIPELINE, ensureExampleRepo, examplePipelineJson } from "./example.js";

export interface DevOptions {
  repoRoot: string;
  cwd: string;
  env: Record<string, string | undefined>;
  print: (line: string) => void;
  /** Resolves when the user asks to stop (Ctrl-C). */
  stopSignal: Promise<void>;
}

/**
 * `npm start`: the local cluster as processes — nats-server, a MongoDB-compatible
 * server, MinIO and the five services — then the example pipeline, shown live
 * until Ctrl-C, which stops everything in reverse order.
 */
export async function runDev(o: DevOptions): Promise<void> {
  const stateDir = join(o.cwd, ".sluice");
  mkdirSync(join(stateDir, "logs"), { recursive: true });
  o.print("starting nats-server, MongoDB-compatible server and MinIO …");
  const servers = await startServers({
    ...(o.env["NATS_URL"] ? { natsUrl: o.env["NATS_URL"] } : {}),
    ...(o.env["MONGO_URL"] ? { mongoUrl: o.env["MONGO_URL"] } : {}),
  });
  let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
  try {
    o.print("starting source-poller, orchestrator, action-runner, approval and artifact services …");
    // The services run on their own authorized nats-server, each with its own user (fresh passwords).
    const busAuthorization = clusterBusAuthorization(generateBusAuthorization(createCatalog()));
    cluster = await startCluster({
      servers,
      repoRoot: o.repoRoot,
      logDir: join(stateDir, "logs"),
      pollIntervalMs: 2000,
      // The example pipeline deploys to its own bucket and nothing else.
      deployBuckets: `${EXAMPLE_PIPELINE}=${EXAMPLE_BUCKET}`,
      env: { SLUICE_DEV_MODE: "true" },
      busAuthorization,
    });
    const address = cluster.addresses["orchestrator"] ?? "";
    const state: DevState = { address, token: cluster.tokens.admin, addresses: cluster.addresses, webhooks: cluster.webhooks };
    writeFileSync(join(o.cwd, DEV_STATE_FILE), JSON.stringify(state, null, 2), { mode: 0o600 });

    const repo = join(stateDir, "example-repo");
    ensureExampleRepo(repo, o.env);
    const client = createSluiceClient({ address, token: cluster.tokens.admin });
    try {
      await client.pipelines.createPipeline(readPipelineJson(examplePipelineJson(repo)));
    } catch (err) {
      if (!isRpcError(err) || err.errorCode !== "PipelineNameInUseException") throw err;
      await client.pipelines.startPipelineExecution({ name: EXAMPLE_PIPELINE });
    }
    o.print("");
    o.print(`cluster is up. orchestrator (PipelineService) at ${address}`);
    o.print(`dev token (admin): ${cluster.tokens.admin}`);
    o.print(`logs: ${join(stateDir, "logs")}   state: ${DEV_STATE_FILE}`);
    o.print(`grpcurl: grpcurl -plaintext -H 'authorization: Bearer ${cluster.tokens.admin}' -d '{"name":"${EXAMPLE_PIPELINE}"}' ${address} sluice.v1.PipelineService/GetPipelineState`);
    o.print(`new commits in ${repo} start new executions (polled every 2 s)`);
    o.print(`webhook receiver: ${cluster.webhooks.url} (AWS-style webhooks: PutWebhook on ${cluster.addresses["source-poller"]}; GitHub pushes: ${cluster.webhooks.url}/hooks/github, secret ${cluster.webhooks.githubSecret})`);
    o.print("");
    await watchPipeline(client, o);
    client.close();
  } finally {
    o.print("stopping …");
    await cluster?.stop();
    await servers.stop();
    rmSync(join(o.cwd, DEV_STATE_FILE), { force: true });
    o.print("stopped.");
  }
}

/** Prints the pipeline view whenever it changes, and how to approve when an approval opens. */
async function watchPipeline(client: ReturnType<typeof createSluiceClient>, o: DevOptions): Promise<void> {
  let stopped = false;
  void o.stopSignal.then(() => (stopped = true));
  let last = "";
  const announced = new Set<string>();
  while (!stopped) {
    try {
      const state = await client.pipelines.getPipelineState({ name: EXAMPLE_PIPELINE });
      const view = renderPipelineState(state);
      if (view !== last) {
        o.print(`[${new Date().toISOString().slice(11, 19)}]\n${view}\n`);
        last = view;
      }
      for (const stage of state.stageStates) {
        for (const action of stage.actionStates) {
          const e = action.latestExecution;
          if (!e?.token || e.status !== "InProgress" || announced.has(e.token)) continue;
          announced.add(e.token);
          o.print(`approval waiting in stage ${stage.stageName}. To approve, run in ${o.cwd}:`);
          o.print(
            `  npm run sluice -- put-approval-result --pipeline-name ${EXAMPLE_PIPELINE} --stage-name ${stage.stageName} --action-name ${action.actionName} --token ${e.token} --status Approved --summary "Looks good"`,
          );
          o.print("(or --status Rejected to stop this release)\n");
        }
      }
    } catch (err) {
      o.print(`could not read pipeline state: ${err instanceof Error ? err.message : String(err)}`);
    }
    await Promise.race([new Promise((r) => setTimeout(r, 500)), o.stopSignal]);
  }
}
