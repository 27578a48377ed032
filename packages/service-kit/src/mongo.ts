import { MongoClient } from "mongodb";
import type { Db, MongoClientOptions } from "mongodb";
import { once } from "./lifecycle.js";

/** An open MongoDB connection and the service's database. */
export interface MongoConnection {
  readonly client: MongoClient;
  readonly db: Db;
  /** Closes the client; idempotent. */
  close(): Promise<void>;
}

/** Options of `connectMongo`. */
export interface ConnectMongoOptions {
  /** How long to look for a usable server before failing (default 10 000). */
  readonly serverSelectionTimeoutMS?: number | undefined;
  /** Shown in the server's logs and currentOp. */
  readonly appName?: string | undefined;
}

/**
 * Connects and pings, so a wrong URL or a server that is down fails at start, not on the first
 * request. The error names the database but never the URL (it may hold credentials).
 */
export async function connectMongo(url: string, dbName: string, opts: ConnectMongoOptions = {}): Promise<MongoConnection> {
  const options: MongoClientOptions = {
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000,
    // No socket may wait forever: after a network partition a connection (the monitor's included)
    // whose peer vanished without a close otherwise hangs, and the server stays Unknown for good.
    connectTimeoutMS: 5_000,
    socketTimeoutMS: 60_000,
    heartbeatFrequencyMS: 2_000,
  };
  if (opts.appName !== undefined) options.appName = opts.appName;
  const client = new MongoClient(url, options);
  const db = client.db(dbName);
  try {
    await client.connect();
    await db.command({ ping: 1 });
  } catch (err) {
    await client.close().catch(() => undefined);
    throw new Error(`mongo: cannot connect (database ${dbName}): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { client, db, close: once(() => client.close()) };
}
