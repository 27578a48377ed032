import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedBinaryLocation, ensureBinary, ensureMongoServerBinary, serverPins } from "../src/index.js";
import { ensureServerBinary } from "../scripts/ensure-servers.mjs";

// A stand-in for the `go` tool: records each invocation and produces a runnable binary the way
// `go install` (GOBIN) and `go build -o` would, so the lookup/lock/build logic runs without a real
// multi-minute compile. Real builds are exercised by scripts/ensure-servers.mjs in `npm test`.
const FAKE_GO = `#!/bin/sh
echo "$*" >> "$FAKE_GO_LOG"
sleep 0.3
case "$1" in
  install)
    name=$(basename "$(echo "$4" | sed 's/@.*//; s#/v[0-9]*$##')")
    printf '#!/bin/sh\\nexit 0\\n' > "$GOBIN/$name"; chmod +x "$GOBIN/$name" ;;
  mod)
    echo "{\\"Dir\\": \\"$FAKE_MODULE_DIR\\"}" ;;
  build)
    test -f build/version/version.txt || { echo "version.txt missing" >&2; exit 1; }
    cp build/version/version.txt "$FAKE_GO_LOG.version"
    printf '#!/bin/sh\\nexit 0\\n' > "$6"; chmod +x "$6" ;;
esac
`;

let work: string;
let fakeGo: string;
const log = (): string => join(work, "go.log");
const silent = (): void => undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "testkit-binaries-"));
  fakeGo = join(work, "go");
  await writeFile(fakeGo, FAKE_GO);
  await chmod(fakeGo, 0o755);
  const moduleDir = join(work, "module");
  await mkdir(join(moduleDir, "build", "version"), { recursive: true });
  await writeFile(join(moduleDir, "go.mod"), "module github.com/FerretDB/FerretDB\n");
  // Like the Go module cache: read-only files and directories.
  await chmod(join(moduleDir, "build", "version"), 0o555);
  process.env["FAKE_GO_LOG"] = log();
  process.env["FAKE_MODULE_DIR"] = moduleDir;
});

afterAll(async () => {
  await chmod(join(work, "module", "build", "version"), 0o755);
  await rm(work, { recursive: true, force: true });
  delete process.env["FAKE_GO_LOG"];
  delete process.env["FAKE_MODULE_DIR"];
});

async function goCalls(): Promise<string[]> {
  const text = await readFile(log(), "utf8").catch(() => "");
  return text.split("\n").filter((l) => l !== "");
}

describe("ensureBinary", () => {
  it("builds a missing binary once, even when two callers ask at the same time", async () => {
    const cacheRoot = join(work, "cache-a");
    const opts = { cacheRoot, searchPath: "", goBinary: fakeGo, log: silent };
    const [a, b] = await Promise.all([ensureServerBinary("nats-server", opts), ensureServerBinary("nats-server", opts)]);
    const expected = join(cacheRoot, "bin", `nats-server-${serverPins()["nats-server"].version}`, "nats-server");
    expect(a).toBe(expected);
    expect(b).toBe(expected);
    expect(cachedBinaryLocation("nats-server", cacheRoot)).toBe(expected);
    const installs = (await goCalls()).filter((l) => l.startsWith("install"));
    expect(installs).toEqual([
      `install -trimpath -ldflags=-s -w github.com/nats-io/nats-server/v2@${serverPins()["nats-server"].version}`,
    ]);
    // Cached now: no further go invocation.
    expect(await ensureServerBinary("nats-server", opts)).toBe(expected);
    expect((await goCalls()).filter((l) => l.startsWith("install"))).toHaveLength(1);
  });

  it("rebuilds a cached binary that does not run", async () => {
    const cacheRoot = join(work, "cache-b");
    const target = cachedBinaryLocation("minio", cacheRoot);
    await mkdir(join(target, ".."), { recursive: true });
    await writeFile(target, "#!/bin/sh\nexit 2\n");
    await chmod(target, 0o755);
    const before = (await goCalls()).length;
    expect(await ensureServerBinary("minio", { cacheRoot, searchPath: "", goBinary: fakeGo, log: silent })).toBe(target);
    expect((await goCalls()).slice(before)).toEqual([
      `install -trimpath -ldflags=-s -w github.com/minio/minio@${serverPins().minio.version}`,
    ]);
    expect(await readFile(target, "utf8")).toContain("exit 0");
  });

  it("builds FerretDB from a patched copy of its module (version.txt added)", async () => {
    const cacheRoot = join(work, "cache-c");
    const path = await ensureServerBinary("ferretdb", { cacheRoot, searchPath: "", goBinary: fakeGo, log: silent });
    expect(path).toBe(cachedBinaryLocation("ferretdb", cacheRoot));
    expect(await readFile(`${log()}.version`, "utf8")).toBe(`${serverPins().ferretdb.version}\n`);
    const calls = await goCalls();
    expect(calls.some((l) => l.startsWith(`mod download -json github.com/FerretDB/FerretDB@`))).toBe(true);
    expect(calls.some((l) => l.startsWith("build -trimpath -buildvcs=false -ldflags=-s -w -o "))).toBe(true);
  });

  it("prefers a binary on PATH, and an explicit path over everything", async () => {
    const pathDir = join(work, "path");
    await mkdir(pathDir, { recursive: true });
    for (const name of ["nats-server", "mongod"]) {
      await writeFile(join(pathDir, name), "#!/bin/sh\nexit 0\n");
      await chmod(join(pathDir, name), 0o755);
    }
    const cacheDir = join(work, "cache-unused");
    expect(await ensureBinary("nats-server", { searchPath: pathDir, cacheDir })).toBe(join(pathDir, "nats-server"));
    expect(await ensureMongoServerBinary({ searchPath: pathDir, cacheDir })).toEqual({ kind: "mongod", path: join(pathDir, "mongod") });
    expect(await ensureBinary("nats-server", { path: fakeGo, searchPath: pathDir })).toBe(fakeGo);
    await expect(ensureBinary("minio", { path: join(work, "nope") })).rejects.toThrow(/not an executable file/);
  });

  it("says what is missing when Go is needed but absent", async () => {
    const cacheDir = join(work, "cache-d");
    await expect(
      ensureServerBinary("nats-server", { cacheRoot: cacheDir, searchPath: "", goBinary: join(work, "no-go"), log: silent }),
    ).rejects.toThrow(/not found: Go is needed to build nats-server/);
  });
});
