import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Client as MinioClient } from "minio";
import { MongoClient } from "mongodb";
import { describe, expect, inject, it } from "vitest";
import { s3SettingsFromUrl, startMinio, startMongo, startNats, startServers } from "../src/index.js";

async function streamToString(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

async function natsRoundTrip(url: string, prefix: string): Promise<string> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const stream = `${prefix}_RT`;
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.rt.>`] });
    await jsm.consumers.add(stream, { durable_name: "rt", ack_policy: AckPolicy.Explicit });
    const js = jetstream(nc);
    const ack = await js.publish(`${prefix}.rt.one`, "hello jetstream");
    expect(ack.seq).toBe(1);
    const consumer = await js.consumers.get(stream, "rt");
    const msg = await consumer.next({ expires: 5000 });
    if (msg === null) throw new Error("no message consumed");
    msg.ack();
    return msg.string();
  } finally {
    await nc.drain();
  }
}

async function mongoRoundTrip(url: string, dbName: string): Promise<unknown> {
  const client = new MongoClient(url);
  try {
    await client.connect();
    const coll = client.db(dbName).collection<{ _id: string; n: number }>("things");
    await coll.insertOne({ _id: "a", n: 42 });
    return await coll.findOne({ _id: "a" });
  } finally {
    await client.close();
  }
}

async function minioRoundTrip(s3: { endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string }, bucket: string): Promise<string> {
  const client = new MinioClient({ ...s3, region: "us-east-1" });
  await client.makeBucket(bucket, "us-east-1");
  await client.putObject(bucket, "dir/hello.txt", Buffer.from("hello minio"));
  return streamToString(await client.getObject(bucket, "dir/hello.txt"));
}

describe("startNats", () => {
  it("runs JetStream on a random port and cleans up on stop", async () => {
    const nats = await startNats();
    try {
      expect(nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      expect(await natsRoundTrip(nats.url, "tk_nats")).toBe("hello jetstream");
    } finally {
      await nats.stop();
    }
    expect(existsSync(nats.storeDir)).toBe(false);
    await nats.stop(); // idempotent
    await expect(connect({ servers: nats.url, reconnect: false, timeout: 1000 })).rejects.toThrow();
  });
});

describe("startMongo", () => {
  it("answers the MongoDB wire protocol (insert + find)", async () => {
    const mongo = await startMongo();
    try {
      expect(mongo.url).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/$/);
      expect(await mongoRoundTrip(mongo.url, "testkit_mongo")).toEqual({ _id: "a", n: 42 });
    } finally {
      await mongo.stop();
    }
    expect(existsSync(mongo.dataDir)).toBe(false);
  });
});

describe("startMinio", () => {
  it("serves S3 with random root credentials (put + get)", async () => {
    const minio = await startMinio();
    try {
      expect(minio.url).toBe(`http://127.0.0.1:${minio.port}`);
      expect(await minioRoundTrip(minio, "testkit-minio")).toBe("hello minio");
      const wrong = new MinioClient({ ...minio, secretKey: "not-the-secret-key", region: "us-east-1" });
      await expect(wrong.listBuckets()).rejects.toThrow();
    } finally {
      await minio.stop();
    }
    expect(existsSync(minio.dataDir)).toBe(false);
  });
});

describe("global setup servers", () => {
  it("are reachable through inject('servers')", async () => {
    const { natsUrl, mongoUrl, s3 } = inject("servers");
    const tag = randomBytes(4).toString("hex");
    expect(await natsRoundTrip(natsUrl, `tk_${tag}`)).toBe("hello jetstream");
    expect(await mongoRoundTrip(mongoUrl, `testkit_${tag}`)).toEqual({ _id: "a", n: 42 });
    expect(await minioRoundTrip(s3, `testkit-${tag}`)).toBe("hello minio");
  });
});

describe("startServers", () => {
  it("reuses every server it is given and starts none", async () => {
    const provided = inject("servers");
    const servers = await startServers({ natsUrl: provided.natsUrl, mongoUrl: provided.mongoUrl, s3: provided.s3 });
    expect({ natsUrl: servers.natsUrl, mongoUrl: servers.mongoUrl, s3: servers.s3 }).toEqual(provided);
    await servers.stop();
    // Stopping must not have touched the shared servers.
    expect(await natsRoundTrip(provided.natsUrl, `tk_reuse_${randomBytes(4).toString("hex")}`)).toBe("hello jetstream");
  });

  it("starts only the missing server", async () => {
    const provided = inject("servers");
    const servers = await startServers({ mongoUrl: provided.mongoUrl, s3: provided.s3 });
    try {
      expect(servers.natsUrl).not.toBe(provided.natsUrl);
      expect(await natsRoundTrip(servers.natsUrl, "tk_missing")).toBe("hello jetstream");
    } finally {
      await servers.stop();
    }
  });
});

describe("s3SettingsFromUrl", () => {
  it("splits an endpoint URL into minio client settings", () => {
    expect(s3SettingsFromUrl("http://127.0.0.1:9000", "ak", "sk")).toEqual({
      endPoint: "127.0.0.1",
      port: 9000,
      useSSL: false,
      accessKey: "ak",
      secretKey: "sk",
      url: "http://127.0.0.1:9000",
    });
    expect(s3SettingsFromUrl("https://s3.example.com", "ak", "sk")).toMatchObject({ port: 443, useSSL: true });
    expect(() => s3SettingsFromUrl("ftp://x", "a", "b")).toThrow(/S3_ENDPOINT/);
    expect(() => s3SettingsFromUrl("not a url", "a", "b")).toThrow(/S3_ENDPOINT/);
  });
});
