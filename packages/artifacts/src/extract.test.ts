import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extractZip } from "./extract.js";

// expect.stringMatching is typed `any`; as `unknown` it can sit inside toMatchObject shapes.
const matching = (re: RegExp): unknown => expect.stringMatching(re);

// yazl refuses hostile names, so hostile archives are written byte by byte here.
interface RawEntry {
  name: string | Buffer;
  data?: Buffer;
  deflate?: boolean;
  /** Unix mode stored in the high 16 bits of the external attributes. */
  mode?: number;
  /** Claimed uncompressed size (default: the truth). */
  declaredSize?: number;
  flags?: number;
}

function rawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === "string" ? Buffer.from(e.name, "utf8") : e.name;
    const data = e.data ?? Buffer.alloc(0);
    const body = e.deflate ? deflateRawSync(data) : data;
    const method = e.deflate ? 8 : 0;
    const crc = crc32(data);
    const usize = e.declaredSize ?? data.length;
    const flags = e.flags ?? 0x0800;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(usize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(usize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

let work: string;
let counter = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "artifacts-extract-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function writeZip(entries: RawEntry[]): Promise<{ zip: string; dest: string }> {
  counter++;
  const zip = join(work, `case-${counter}.zip`);
  await writeFile(zip, rawZip(entries));
  return { zip, dest: join(work, `case-${counter}-out`) };
}

async function listTree(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).sort();
  } catch {
    return [];
  }
}

const ok: RawEntry = { name: "ok.txt", data: Buffer.from("fine") };
const text = (s: string) => Buffer.from(s);

describe("extractZip zip-slip corpus", () => {
  const hostile: [string, RawEntry, RegExp][] = [
    ["parent traversal", { name: "../evil.txt", data: text("x") }, /'\.\.'/],
    ["nested traversal", { name: "a/b/../../../evil.txt", data: text("x") }, /'\.\.'/],
    ["traversal in a directory entry", { name: "../evil/", mode: 0o040755 }, /'\.\.'/],
    ["absolute path", { name: "/tmp/evil.txt", data: text("x") }, /absolute/],
    ["drive letter", { name: "C:/evil.txt", data: text("x") }, /drive letter/],
    ["drive letter with backslash", { name: "C:\\evil.txt", data: text("x") }, /backslash|drive/],
    ["backslash traversal", { name: "..\\..\\evil.txt", data: text("x") }, /backslash/],
    ["NUL byte", { name: "ok.txt\u0000../../evil", data: text("x") }, /NUL/],
    ["symlink entry", { name: "link", data: text("/etc/passwd"), mode: 0o120777 }, /symbolic link/],
    ["device file", { name: "dev", data: text(""), mode: 0o020644 }, /regular file/],
    ["invalid UTF-8 name", { name: Buffer.from([0x61, 0xff, 0xfe]), data: text("x"), flags: 0 }, /UTF-8/],
  ];

  it.each(hostile)("refuses %s and writes nothing", async (_label, entry, reason) => {
    // The hostile entry comes last: validation must happen before the good one is written.
    const { zip, dest } = await writeZip([ok, entry]);
    const err = await extractZip(zip, dest).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "ValidationException", message: matching(reason) });
    expect((err as { message: string }).message).toMatch(/^zip entry "/);
    expect((err as { violations: { field: string }[] }).violations[0]?.field).toBe("entries[1]");
    expect(await listTree(dest)).toEqual([]);
    expect(await listTree(join(work, "..", "evil.txt"))).toEqual([]);
  });

  it.each<[string, RawEntry[]]>([
    ["the same name twice", [ok, { name: "ok.txt", data: text("other") }]],
    ["names equal after normalization", [ok, { name: "./ok.txt", data: text("other") }]],
    ["double slashes", [{ name: "a/b.txt", data: text("1") }, { name: "a//b.txt", data: text("2") }]],
    ["a file that is also a directory", [{ name: "a", data: text("file") }, { name: "a/b.txt", data: text("x") }]],
    ["a directory that is also a file", [{ name: "a/b.txt", data: text("x") }, { name: "a", data: text("file") }]],
  ])("refuses %s", async (_label, entries) => {
    const { zip, dest } = await writeZip(entries);
    await expect(extractZip(zip, dest)).rejects.toMatchObject({
      code: "ValidationException",
      violations: [{ field: "entries[1]" }],
    });
    expect(await listTree(dest)).toEqual([]);
  });

  it("never follows or overwrites something already at a target path", async () => {
    const { zip, dest } = await writeZip([ok]);
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, "ok.txt"), "existing");
    await expect(extractZip(zip, dest)).rejects.toMatchObject({ message: matching(/already exists/) });
    expect(await readFile(join(dest, "ok.txt"), "utf8")).toBe("existing");
  });

  it("extracts a benign archive with directories, './' prefixes and an executable", async () => {
    const { zip, dest } = await writeZip([
      { name: "./", mode: 0o040755 },
      { name: "dir/", mode: 0o040755 },
      { name: "dir/sub/file.txt", data: text("hello"), deflate: true },
      { name: "./top.txt", data: text("top") },
      { name: "run.sh", data: text("#!/bin/sh\n"), mode: 0o100755 },
    ]);
    expect(await extractZip(zip, dest)).toEqual({ files: 3, bytes: 5 + 3 + 10 });
    expect(await readFile(join(dest, "dir/sub/file.txt"), "utf8")).toBe("hello");
    expect(await readFile(join(dest, "top.txt"), "utf8")).toBe("top");
    expect(await listTree(dest)).toEqual(["dir", "dir/sub", "dir/sub/file.txt", "run.sh", "top.txt"]);
  });

  it("refuses a file that is not a zip", async () => {
    const zip = join(work, "not-a-zip.zip");
    await writeFile(zip, "hello, I am text");
    await expect(extractZip(zip, join(work, "not-a-zip-out"))).rejects.toMatchObject({
      code: "ValidationException",
      violations: [{ field: "zip" }],
    });
  });
});

describe("extractZip limits", () => {
  it("refuses a zip bomb by compression ratio", async () => {
    const zeros = Buffer.alloc(8 * 1024 * 1024); // deflates ~1000:1
    const { zip, dest } = await writeZip([ok, { name: "bomb.bin", data: zeros, deflate: true }]);
    await expect(extractZip(zip, dest)).rejects.toMatchObject({
      code: "ValidationException",
      message: matching(/^zip entry "bomb\.bin": compression ratio \d+ exceeds the limit of 200/),
    });
    expect(await listTree(dest)).toEqual([]);
  });

  it("refuses many small entries that together exceed the archive ratio", async () => {
    // Each entry stays under the per-entry ratio floor; together they are a bomb.
    const entries = Array.from({ length: 40 }, (_, i) => ({ name: `part-${i}.bin`, data: Buffer.alloc(512 * 1024), deflate: true }));
    const { zip, dest } = await writeZip(entries);
    await expect(extractZip(zip, dest)).rejects.toMatchObject({
      message: matching(/archive compression ratio \d+ exceeds the limit of 200/),
    });
  });

  it("passes a small, very compressible file (below the ratio floor)", async () => {
    const { zip, dest } = await writeZip([{ name: "padded.txt", data: Buffer.alloc(100_000, 0x20), deflate: true }]);
    expect(await extractZip(zip, dest)).toEqual({ files: 1, bytes: 100_000 });
  });

  it("counts the bytes that actually stream out, not the header's claim", async () => {
    const data = Buffer.from("x".repeat(50_000));
    // The header claims 10 bytes; the limit would let 10 bytes through.
    const { zip, dest } = await writeZip([{ name: "liar.txt", data, deflate: true, declaredSize: 10 }]);
    const err = await extractZip(zip, dest, { maxTotalBytes: 1000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "ValidationException", message: matching(/^zip entry "liar\.txt": /) });
    expect(await listTree(dest)).toEqual([]);
  });

  it("refuses an archive whose declared total exceeds maxTotalBytes before writing", async () => {
    const { zip, dest } = await writeZip([ok, { name: "big.txt", data: Buffer.alloc(5000, 0x41) }]);
    await expect(extractZip(zip, dest, { maxTotalBytes: 1000 })).rejects.toMatchObject({
      message: 'zip entry "big.txt": archive expands beyond the limit of 1000 bytes',
      violations: [{ field: "entries[1]" }],
    });
    expect(await listTree(dest)).toEqual([]);
  });

  it("refuses more entries than maxEntries", async () => {
    const { zip, dest } = await writeZip([ok, { name: "b", data: text("b") }, { name: "c", data: text("c") }]);
    await expect(extractZip(zip, dest, { maxEntries: 2 })).rejects.toMatchObject({
      message: "zip: 3 entries exceed the limit of 2",
    });
  });
});
