import {
  cachedBinaryPath,
  defaultCacheRoot,
  ensureMongoBinary,
  ensureServerBinary,
  loadPins,
} from "../scripts/ensure-servers.mjs";

/** The server binaries testkit can build from pinned Go sources (pins: packages/testkit/servers.json). */
export type BinaryName = "nats-server" | "ferretdb" | "minio";

/** Where to look for (and put) server binaries. */
export interface BinaryOptions {
  /** Use this executable and skip every lookup. */
  path?: string | undefined;
  /** PATH-style list searched before the cache. @default process PATH */
  searchPath?: string | undefined;
  /**
   * Cache root; binaries live in `<cacheDir>/bin/<name>-<version>/<name>`. Entry points pass
   * `$SLUICE_CACHE_DIR` here. @default ~/.cache/sluice
   */
  cacheDir?: string | undefined;
  /** Progress lines of a (minutes-long) build. @default writes to stderr */
  log?: ((line: string) => void) | undefined;
}

/** The MongoDB-compatible server chosen by {@link ensureMongoServerBinary}. */
export interface MongoServerBinary {
  /** `mongod` when one is on PATH (a real MongoDB), else `ferretdb` (FerretDB over SQLite). */
  kind: "mongod" | "ferretdb";
  path: string;
}

function scriptOptions(opts: BinaryOptions) {
  return { explicitPath: opts.path, searchPath: opts.searchPath, cacheRoot: opts.cacheDir, log: opts.log };
}

/**
 * Returns a runnable server binary: `opts.path`, else the first `name` on PATH, else the pinned build in the
 * cache, running the pinned `go install` (under a lock file shared by concurrent processes) when it is
 * missing or broken. Rejects when Go is needed but absent or the build fails.
 */
export function ensureBinary(name: BinaryName, opts: BinaryOptions = {}): Promise<string> {
  return ensureServerBinary(name, scriptOptions(opts));
}

/**
 * Picks the MongoDB-compatible server: `mongod` from PATH when present, otherwise FerretDB via
 * {@link ensureBinary}. `opts.path` is treated as a FerretDB binary.
 */
export function ensureMongoServerBinary(opts: BinaryOptions = {}): Promise<MongoServerBinary> {
  return ensureMongoBinary(scriptOptions(opts));
}

/** Pinned module and version of each buildable server, as read from servers.json. */
export function serverPins(): Record<BinaryName, { module: string; version: string }> {
  const pins = loadPins();
  return {
    "nats-server": { module: pins["nats-server"].module, version: pins["nats-server"].version },
    ferretdb: { module: pins.ferretdb.module, version: pins.ferretdb.version },
    minio: { module: pins.minio.module, version: pins.minio.version },
  };
}

/** The cache location of the pinned build of `name` (whether or not it exists yet). */
export function cachedBinaryLocation(name: BinaryName, cacheDir: string = defaultCacheRoot()): string {
  return cachedBinaryPath(name, cacheDir);
}
