import { createServer, connect } from "node:net";
import type { AddressInfo, Socket } from "node:net";

/**
 * A TCP relay in front of a real server whose link can be cut, for outage tests: `down()`
 * drops every connection and refuses new ones until `up()`. The server itself keeps running,
 * so the test sees a network partition, not a restart.
 */
export interface TcpRelay {
  /** The relay's loopback port; point the client at `127.0.0.1:<port>`. */
  readonly port: number;
  down(): void;
  up(): void;
  close(): Promise<void>;
}

/** Starts a relay on a free loopback port to `target`. */
export async function startTcpRelay(target: { readonly host: string; readonly port: number }): Promise<TcpRelay> {
  let open = true;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const dropAll = (): void => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: (server.address() as AddressInfo).port,
    down() {
      open = false;
      dropAll();
    },
    up() {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}

/** One line a {@link recordingLogger} kept: its message and its fields with every child's bindings. */
export interface RecordedLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

/** A logger (the shape of @sluice/domain's `Logger`) that keeps every line, child loggers included. */
export interface RecordingLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): RecordingLogger;
}

/** Keeps every line logged through it (and its children) in `into`. */
export function recordingLogger(into: RecordedLine[], base: Record<string, unknown> = {}): RecordingLogger {
  const at =
    (level: RecordedLine["level"]) =>
    (msg: string, fields?: Record<string, unknown>): void =>
      void into.push({ level, msg, fields: { ...base, ...fields } });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: (fields) => recordingLogger(into, { ...base, ...fields }) };
}
