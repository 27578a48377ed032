// Types for ensure-servers.mjs (plain JS so it runs before any TypeScript is built).

export type ServerBinaryName = "nats-server" | "ferretdb" | "minio";

export interface ServerPin {
  module: string;
  version: string;
  package: string;
  check: string[];
  files: Record<string, string>;
}

export interface EnsureServerOptions {
  explicitPath?: string | undefined;
  searchPath?: string | undefined;
  cacheRoot?: string | undefined;
  log?: ((line: string) => void) | undefined;
  goBinary?: string | undefined;
}

export declare const SERVER_NAMES: readonly ServerBinaryName[];
export declare function loadPins(): Record<ServerBinaryName, ServerPin>;
export declare function defaultCacheRoot(): string;
export declare function cachedBinaryPath(name: ServerBinaryName, cacheRoot?: string): string;
export declare function findOnPath(command: string, searchPath?: string): string | undefined;
export declare function ensureServerBinary(name: ServerBinaryName, opts?: EnsureServerOptions): Promise<string>;
export declare function ensureMongoBinary(
  opts?: EnsureServerOptions,
): Promise<{ kind: "mongod" | "ferretdb"; path: string }>;
