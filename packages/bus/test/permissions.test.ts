// Attacks on a real nats-server running the generated authorization: each test connects as a
// principal and tries something its role must not do, and asserts the server refuses it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { noopLogger } from "@sluice/domain";
import { JobResultSchema, JobSchema, LogBatchSchema, SourceChangedSchema, StateChangeEventSchema } from "@sluice/proto";
import type { Job } from "@sluice/proto";
import { startNats } from "@sluice/testkit";
import type { NatsServer } from "@sluice/testkit";
import { connectBus, createCatalog, generateBusAuthorization, isPermissionViolation } from "../src/index.js";
import type { Bus, BusLogin, GeneratedBusAuthorization } from "../src/index.js";

const PREFIX = "tperm";
const catalog = createCatalog({ prefix: PREFIX, partitions: 4 });
let auth: GeneratedBusAuthorization;
let server: NatsServer;
let admin: Bus;
let runner: Bus;
const buses: Bus[] = [];

async function busAs(login: BusLogin, name: string): Promise<Bus> {
  const bus = await connectBus({ servers: server.url, name, logger: noopLogger, prefix: PREFIX, partitions: 4, credentials: login });
  buses.push(bus);
  return bus;
}

/** Publishes on core NATS and resolves with the server's permission error for exactly that subject. */
async function corePublishDenied(nc: NatsConnection, subject: string): Promise<boolean> {
  const denied = (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && isPermissionViolation(s.error) && s.error.message.includes(`"${subject}"`)) return true;
    }
    return false;
  })();
  nc.publish(subject, new Uint8Array([1]));
  await nc.flush();
  return denied;
}

beforeAll(async () => {
  auth = generateBusAuthorization(catalog, ["p1", "p2", ["m1", "m2"]]);
  server = await startNats({ config: auth.config });
  admin = await busAs(auth.admin, "perm-admin");
  await admin.ensureStreams();
  runner = await busAs(auth.runners["p1"] ?? auth.admin, "perm-runner-p1");
});

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await server.stop();
});

describe("authentication", () => {
  it("refuses a connection without credentials", async () => {
    await expect(connect({ servers: server.url, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
  });

  it("refuses a wrong password", async () => {
    await expect(connect({ servers: server.url, user: "runner-p1", pass: "not-the-password-at-all", maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization/i);
  });
});

describe("a runner of pool p1", () => {
  it("waits for the streams instead of creating them, and then consumes its pool's jobs and publishes results", async () => {
    await runner.ensureStreams();
    const seen: Job[] = [];
    const consumer = await runner.consume({
      stream: runner.streams.jobs,
      durable: "runner-p1",
      filterSubject: [runner.subjects.jobSubject("p1", "Build", "Commands"), runner.subjects.jobSubject("p1", "Deploy", "Commands")],
      schema: JobSchema,
      handler: async (job) => {
        seen.push(job);
        await runner.publish(runner.subjects.resultSubject(job.pipelineName, { runner: "p1" }), JobResultSchema, { jobId: job.jobId }, { msgId: `r-${job.jobId}` });
      },
    });
    await admin.publish(admin.subjects.jobSubject("p1", "Build", "Commands"), JobSchema, { jobId: "ok-1", pipelineName: "demo" }, { msgId: "ok-1" });
    await expect.poll(() => seen.map((j) => j.jobId)).toEqual(["ok-1"]);
    await expect.poll(async () => (await admin.jsm.streams.info(admin.streams.results)).state.messages).toBe(1);
    await consumer.stop();
  });

  it("cannot publish a job", async () => {
    const err: unknown = await runner.publish(runner.subjects.jobSubject("p1", "Build", "Commands"), JobSchema, { jobId: "evil" }, { msgId: "evil-job" }).catch((e: unknown) => e);
    expect(isPermissionViolation(err)).toBe(true);
  });

  it("publishes log lines, but cannot read the log stream back", async () => {
    const ack = await runner.publish(runner.subjects.logSubject("demo", "ae-1"), LogBatchSchema, { jobId: "ae-1:1", lines: [{ sequence: 1n, text: "hi" }] }, { msgId: "log:ae-1:1:1" });
    expect(ack.stream).toBe(runner.streams.logs);
    const read: unknown = await runner.js.consumers.get(runner.streams.logs).catch((e: unknown) => e);
    expect(isPermissionViolation(read)).toBe(true);
  });

  it("cannot publish a cancel", async () => {
    expect(await corePublishDenied(runner.nc, runner.subjects.controlSubject("cancel"))).toBe(true);
  });

  it("cannot publish a source change or a declaration/state event", async () => {
    const source: unknown = await runner.publish(runner.subjects.sourceSubject("demo"), SourceChangedSchema, { pipelineName: "demo" }, { msgId: "evil-src" }).catch((e: unknown) => e);
    expect(isPermissionViolation(source)).toBe(true);
    const event: unknown = await runner
      .publish(runner.subjects.eventSubject("demo", "declaration"), StateChangeEventSchema, { pipeline: "demo" }, { msgId: "evil-ev" })
      .catch((e: unknown) => e);
    expect(isPermissionViolation(event)).toBe(true);
  });

  it("cannot publish a result as the approval service or as another pool", async () => {
    for (const publisher of ["approval", { runner: "p2" }] as const) {
      const err: unknown = await runner.publish(runner.subjects.resultSubject("demo", publisher), JobResultSchema, { jobId: "forged" }, { msgId: `forged-${JSON.stringify(publisher)}` }).catch((e: unknown) => e);
      expect(isPermissionViolation(err)).toBe(true);
    }
  });

  it("cannot create, delete or purge streams", async () => {
    const created: unknown = await runner.jsm.streams.add({ name: "EVIL", subjects: ["evil.>"] }).catch((e: unknown) => e);
    expect(isPermissionViolation(created)).toBe(true);
    const deleted: unknown = await runner.jsm.streams.delete(runner.streams.jobs).catch((e: unknown) => e);
    expect(isPermissionViolation(deleted)).toBe(true);
    const purged: unknown = await runner.jsm.streams.purge(runner.streams.results).catch((e: unknown) => e);
    expect(isPermissionViolation(purged)).toBe(true);
    expect((await admin.jsm.streams.info(admin.streams.jobs)).config.name).toBe(admin.streams.jobs);
  });

  it("cannot create another consumer, nor point its own at another pool through the filter-checked subject", async () => {
    const other: unknown = await runner.jsm.consumers
      .add(runner.streams.jobs, { durable_name: "thief", ack_policy: AckPolicy.Explicit, filter_subject: runner.subjects.jobSubject("p2", "Build", "Commands") })
      .catch((e: unknown) => e);
    expect(isPermissionViolation(other)).toBe(true);
    const widened: unknown = await runner.jsm.consumers
      .add(runner.streams.jobs, { durable_name: "runner-p1", ack_policy: AckPolicy.Explicit, filter_subject: `${PREFIX}.sluice.jobs.p2.>` })
      .catch((e: unknown) => e);
    expect(isPermissionViolation(widened)).toBe(true);
    const listed: unknown = await (async () => {
      for await (const c of runner.jsm.consumers.list(runner.streams.jobs)) void c;
    })().catch((e: unknown) => e);
    expect(isPermissionViolation(listed)).toBe(true);
  });

  it("cannot pull another pool's jobs", async () => {
    await admin.jsm.consumers.add(admin.streams.jobs, { durable_name: "runner-p2", ack_policy: AckPolicy.Explicit, filter_subject: admin.subjects.jobSubject("p2", "Build", "Commands") });
    await admin.publish(admin.subjects.jobSubject("p2", "Build", "Commands"), JobSchema, { jobId: "p2-job" }, { msgId: "p2-job" });
    const viaApi: unknown = await runner.js.consumers.get(runner.streams.jobs, "runner-p2").catch((e: unknown) => e);
    expect(isPermissionViolation(viaApi)).toBe(true);
    const raw: unknown = await runner.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${runner.streams.jobs}.runner-p2`, JSON.stringify({ batch: 1 })).catch((e: unknown) => e);
    expect(isPermissionViolation(raw)).toBe(true);
    // Nor by listening on the job subjects directly.
    const sub = runner.nc.subscribe(`${PREFIX}.sluice.jobs.>`);
    expect(isPermissionViolation(await sub.closed)).toBe(true);
    expect((await admin.jsm.consumers.info(admin.streams.jobs, "runner-p2")).num_pending).toBe(1);
  });

  it("cannot read another user's inbox", async () => {
    for (const subject of ["_INBOX.>", "_INBOX_orchestrator.>", "_INBOX_runner-p2.>", ">"]) {
      const sub = runner.nc.subscribe(subject);
      expect(isPermissionViolation(await sub.closed), subject).toBe(true);
    }
  });
});

describe("the other services", () => {
  it("the approval service publishes approval results only, and no jobs", async () => {
    const approval = await busAs(auth.approval, "perm-approval");
    await approval.publish(approval.subjects.resultSubject("demo", "approval"), JobResultSchema, { jobId: "a-1" }, { msgId: "a-1" });
    const asRunner: unknown = await approval.publish(approval.subjects.resultSubject("demo", { runner: "p1" }), JobResultSchema, { jobId: "a-2" }, { msgId: "a-2" }).catch((e: unknown) => e);
    expect(isPermissionViolation(asRunner)).toBe(true);
    const job: unknown = await approval.publish(approval.subjects.jobSubject("p1", "Build", "Commands"), JobSchema, { jobId: "a-3" }, { msgId: "a-3" }).catch((e: unknown) => e);
    expect(isPermissionViolation(job)).toBe(true);
  });

  it("the source poller publishes source changes only, and no results or jobs", async () => {
    const poller = await busAs(auth.sourcePoller, "perm-poller");
    await poller.publish(poller.subjects.sourceSubject("demo"), SourceChangedSchema, { pipelineName: "demo" }, { msgId: "s-1" });
    const result: unknown = await poller.publish(poller.subjects.resultSubject("demo", "approval"), JobResultSchema, { jobId: "s-2" }, { msgId: "s-2" }).catch((e: unknown) => e);
    expect(isPermissionViolation(result)).toBe(true);
    const job: unknown = await poller.publish(poller.subjects.jobSubject("p1", "Build", "Commands"), JobSchema, { jobId: "s-3" }, { msgId: "s-3" }).catch((e: unknown) => e);
    expect(isPermissionViolation(job)).toBe(true);
  });

  it("the orchestrator creates streams and publishes jobs and cancels", async () => {
    const orchestrator = await busAs(auth.orchestrator, "perm-orchestrator");
    await orchestrator.ensureStreams();
    await orchestrator.publish(orchestrator.subjects.jobSubject("p1", "Test", "Commands"), JobSchema, { jobId: "o-1" }, { msgId: "o-1" });
    const cancels = runner.nc.subscribe(runner.subjects.controlSubject("cancel"), { max: 1 });
    await runner.nc.flush();
    orchestrator.nc.publish(orchestrator.subjects.controlSubject("cancel"), new Uint8Array([7]));
    for await (const m of cancels) expect(Array.from(m.data)).toEqual([7]);
  });
});

describe("a runner user of pools m1 and m2", () => {
  it("consumes and answers the jobs of both pools, and no other pool's", async () => {
    const multi = await busAs(auth.runners["m1,m2"] ?? auth.admin, "perm-runner-m");
    expect(auth.runners["m1,m2"]?.user).toBe("runner-m1");
    const seen: string[] = [];
    const consumers = await Promise.all(
      ["m1", "m2"].map((pool) =>
        multi.consume({
          stream: multi.streams.jobs,
          durable: `runner-${pool}`,
          filterSubject: [multi.subjects.jobSubject(pool, "Build", "Commands"), multi.subjects.jobSubject(pool, "Test", "Commands")],
          schema: JobSchema,
          handler: async (job) => {
            seen.push(job.jobId);
            await multi.publish(multi.subjects.resultSubject(job.pipelineName, { runner: pool }), JobResultSchema, { jobId: job.jobId }, { msgId: `r-${job.jobId}` });
          },
        }),
      ),
    );
    await admin.publish(admin.subjects.jobSubject("m1", "Build", "Commands"), JobSchema, { jobId: "m-1", pipelineName: "demo" }, { msgId: "m-1" });
    await admin.publish(admin.subjects.jobSubject("m2", "Build", "Commands"), JobSchema, { jobId: "m-2", pipelineName: "demo" }, { msgId: "m-2" });
    await expect.poll(() => [...seen].sort()).toEqual(["m-1", "m-2"]);
    for (const c of consumers) await c.stop();
    const foreign: unknown = await multi.publish(multi.subjects.resultSubject("demo", { runner: "p1" }), JobResultSchema, { jobId: "forged-m" }, { msgId: "forged-m" }).catch((e: unknown) => e);
    expect(isPermissionViolation(foreign)).toBe(true);
    const other: unknown = await multi
      .consume({ stream: multi.streams.jobs, durable: "runner-p2", filterSubject: multi.subjects.jobSubject("p2", "Build", "Commands"), schema: JobSchema, handler: () => Promise.resolve() })
      .catch((e: unknown) => e);
    expect(isPermissionViolation(other)).toBe(true);
  });
});
