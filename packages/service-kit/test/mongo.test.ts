import { describe, expect, inject, it } from "vitest";
// Types inject("servers"), provided by the testkit global setup.
import type {} from "@sluice/testkit";
import { connectMongo } from "../src/index.js";

describe("connectMongo", () => {
  it("connects, uses the named database and closes idempotently", async () => {
    const dbName = `sluice_servicekit_${process.pid}`;
    const conn = await connectMongo(inject("servers").mongoUrl, dbName, { appName: "service-kit-test" });
    try {
      expect(conn.db.databaseName).toBe(dbName);
      await conn.db.collection("probe").insertOne({ n: 1 });
      expect(await conn.db.collection("probe").findOne({ n: 1 })).toMatchObject({ n: 1 });
      await conn.db.dropDatabase();
    } finally {
      await conn.close();
      await conn.close();
    }
  });

  it("fails fast with an error naming the database, not the URL", async () => {
    // Port 1 on loopback: nothing listens there.
    const err = await connectMongo("mongodb://user:hunter2@127.0.0.1:1/", "sluice_nowhere", { serverSelectionTimeoutMS: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^mongo: cannot connect \(database sluice_nowhere\)/);
    expect((err as Error).message).not.toContain("hunter2");
  });
});
