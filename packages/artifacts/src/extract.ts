import { createWriteStream } from "node:fs";
import { mkdir, realpath, rm, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DomainError } from "@sluice/domain";
import yauzl from "yauzl";

/** Limits {@link extractZip} enforces; every one is checked before and while writing. */
export interface ExtractLimits {
  /** Most entries (files + directories) an archive may have. @default 100000 */
  maxEntries?: number;
  /** Most decompressed bytes in total, counted as they stream out (not taken from headers). @default 2 GiB */
  maxTotalBytes?: number;
  /**
   * Largest decompressed/compressed ratio, per entry and for the whole archive (against the zip file's
   * size). Checked only beyond {@link RATIO_FLOOR_BYTES} of output so small, very compressible files (a
   * padded text file) pass. @default 200
   */
  maxRatio?: number;
}

/** The limits used for options left out. */
export const DEFAULT_EXTRACT_LIMITS: Readonly<Required<ExtractLimits>> = Object.freeze({
  maxEntries: 100_000,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
  maxRatio: 200,
});

/** Output below this many bytes (per entry, and in total) is never judged by ratio. */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

/** What {@link extractZip} wrote. */
export interface ExtractResult {
  files: number;
  bytes: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const HOST_UNIX = 3;
const FLAG_UTF8 = 0x0800;

function reject(index: number, name: string, message: string): DomainError {
  const text = `zip entry ${JSON.stringify(name)}: ${message}`;
  return new DomainError("ValidationException", text, [{ field: `entries[${index}]`, message: text }]);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A validated entry: the normalized relative path and what to create. */
interface PlannedEntry {
  index: number;
  entry: yauzl.Entry;
  /** Display name (as stored). */
  name: string;
  /** Normalized `/`-separated relative path. */
  path: string;
  kind: "file" | "dir";
  executable: boolean;
}

function decodeName(index: number, entry: yauzl.Entry): string {
  const raw = entry.fileNameRaw;
  try {
    // Names without the UTF-8 flag are CP437 by the spec, but every tool in practice writes UTF-8 (or
    // ASCII); anything that is not valid UTF-8 is refused rather than guessed.
    return utf8.decode(raw);
  } catch {
    const flagged = (entry.generalPurposeBitFlag & FLAG_UTF8) !== 0;
    throw reject(index, raw.toString("latin1"), `name is not valid UTF-8${flagged ? "" : " (and not flagged as such)"}`);
  }
}

/**
 * Checks one entry before anything is written: a relative path without `..`, backslashes, drive
 * letters, NUL or other control characters; a regular file or directory (symbolic links and special
 * files are refused); not encrypted.
 */
function planEntry(index: number, entry: yauzl.Entry): PlannedEntry | undefined {
  const name = decodeName(index, entry);
  if (name === "") throw reject(index, name, "empty name");
  if (/[\u0000-\u001f\u007f]/.test(name)) throw reject(index, name, "name contains a NUL or control character");
  if (name.includes("\\")) throw reject(index, name, "name contains a backslash");
  if (name.startsWith("/")) throw reject(index, name, "absolute path");
  if (/^[A-Za-z]:/.test(name)) throw reject(index, name, "path starts with a drive letter");
  const segments = name.split("/");
  if (segments.includes("..")) throw reject(index, name, "path contains '..'");
  const unixHost = entry.versionMadeBy >> 8 === HOST_UNIX;
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  const type = mode & S_IFMT;
  // A link type is refused whatever the host field says: some tools write Unix modes under other hosts.
  if (type === S_IFLNK) throw reject(index, name, "symbolic links are not allowed");
  if (unixHost && type !== 0 && type !== S_IFREG && type !== S_IFDIR) {
    throw reject(index, name, `not a regular file or directory (mode ${mode.toString(8)})`);
  }
  if (entry.isEncrypted()) throw reject(index, name, "encrypted entries are not supported");
  const isDir = name.endsWith("/") || (unixHost && type === S_IFDIR);
  const path = segments.filter((s) => s !== "" && s !== ".").join("/");
  if (path === "") {
    if (isDir) return undefined; // "./" names the destination itself
    throw reject(index, name, "empty path");
  }
  if (!isDir && entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    throw reject(index, name, `unsupported compression method ${entry.compressionMethod}`);
  }
  const executable = unixHost && !isDir && (mode & 0o111) !== 0;
  return { index, entry, name, path, kind: isDir ? "dir" : "file", executable };
}

/** Rejects the same path twice and a path used both as a file and as a directory. */
function checkCollisions(planned: readonly PlannedEntry[]): void {
  const files = new Set<string>();
  const explicitDirs = new Set<string>();
  const impliedDirs = new Set<string>();
  for (const p of planned) {
    const parts = p.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (files.has(parent)) throw reject(p.index, p.name, `"${parent}" is a file in this archive`);
      impliedDirs.add(parent);
    }
    if (p.kind === "file") {
      if (files.has(p.path)) throw reject(p.index, p.name, "duplicate entry");
      if (explicitDirs.has(p.path) || impliedDirs.has(p.path)) throw reject(p.index, p.name, "also a directory in this archive");
      files.add(p.path);
    } else {
      if (explicitDirs.has(p.path)) throw reject(p.index, p.name, "duplicate entry");
      if (files.has(p.path)) throw reject(p.index, p.name, "also a file in this archive");
      explicitDirs.add(p.path);
    }
  }
}

function openZip(zipFile: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, rejectPromise) => {
    yauzl.open(
      zipFile,
      // decodeStrings off: names are validated here, with errors naming the entry; autoClose off: the
      // entries are read once to validate and again to extract.
      { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: false },
      (err, zf) => {
        if (err !== null || zf === undefined) {
          const message = `zip: not a readable zip archive (${err?.message ?? "unknown error"})`;
          rejectPromise(new DomainError("ValidationException", message, [{ field: "zip", message }]));
        } else {
          resolve(zf);
        }
      },
    );
  });
}

function readAllEntries(zf: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, rejectPromise) => {
    const entries: yauzl.Entry[] = [];
    const onError = (err: Error): void => {
      const message = `zip: corrupt central directory (${err.message})`;
      rejectPromise(new DomainError("ValidationException", message, [{ field: "zip", message }]));
    };
    zf.on("entry", (entry: yauzl.Entry) => {
      entries.push(entry);
      zf.readEntry();
    });
    zf.once("end", () => {
      zf.removeListener("error", onError);
      resolve(entries);
    });
    zf.once("error", onError);
    zf.readEntry();
  });
}

function openEntry(zf: yauzl.ZipFile, p: PlannedEntry): Promise<Readable> {
  return new Promise((resolve, rejectPromise) => {
    zf.openReadStream(p.entry, (err, stream) => {
      if (err !== null) rejectPromise(reject(p.index, p.name, `cannot be read (${err.message})`));
      else resolve(stream);
    });
  });
}

/**
 * Extracts `zipFile` into `destDir` (created if missing), safely against hostile archives. Every entry is
 * validated before anything is written: relative paths only (no absolute paths, `..`, backslashes, drive
 * letters, NUL/control characters), no symbolic links or special files, no duplicate paths or file/directory
 * clashes after normalization, and the {@link ExtractLimits} as declared by the headers. While writing,
 * decompressed bytes are counted as they stream and the limits are checked again, so a header that lies
 * does not help. Files are created exclusively (an existing file or link at a target path is an error, never
 * followed); executable bits survive, other modes become 0644/0755.
 *
 * Throws `DomainError("ValidationException")` naming the offending entry (field `entries[i]`). After a
 * failure `destDir` may hold part of the archive; callers discard it.
 */
export async function extractZip(zipFile: string, destDir: string, limits: ExtractLimits = {}): Promise<ExtractResult> {
  const max = { ...DEFAULT_EXTRACT_LIMITS, ...limits };
  const archiveBytes = (await stat(zipFile)).size;
  const zf = await openZip(zipFile);
  try {
    if (zf.entryCount > max.maxEntries) {
      const message = `zip: ${zf.entryCount} entries exceed the limit of ${max.maxEntries}`;
      throw new DomainError("ValidationException", message, [{ field: "zip", message }]);
    }
    const entries = await readAllEntries(zf);
    const planned: PlannedEntry[] = [];
    let declaredTotal = 0;
    entries.forEach((entry, index) => {
      const p = planEntry(index, entry);
      if (p === undefined) return;
      if (p.kind === "file") {
        declaredTotal += entry.uncompressedSize;
        if (declaredTotal > max.maxTotalBytes) {
          throw reject(index, p.name, `archive expands beyond the limit of ${max.maxTotalBytes} bytes`);
        }
        checkEntryRatio(p, entry.uncompressedSize, max.maxRatio);
      }
      planned.push(p);
    });
    checkCollisions(planned);
    checkArchiveRatio(planned[planned.length - 1], declaredTotal, archiveBytes, max.maxRatio);

    await mkdir(destDir, { recursive: true });
    const root = await realpath(destDir);
    let files = 0;
    let total = 0;
    for (const p of planned) {
      const target = join(root, ...p.path.split("/"));
      // Defence in depth: the validation above already guarantees this.
      if (!target.startsWith(root + sep)) throw reject(p.index, p.name, "path escapes the destination");
      if (p.kind === "dir") {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const source = await openEntry(zf, p);
      let entryBytes = 0;
      let limitError: DomainError | undefined;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          entryBytes += chunk.length;
          total += chunk.length;
          try {
            if (total > max.maxTotalBytes) {
              throw reject(p.index, p.name, `archive expands beyond the limit of ${max.maxTotalBytes} bytes`);
            }
            checkEntryRatio(p, entryBytes, max.maxRatio);
            checkArchiveRatio(p, total, archiveBytes, max.maxRatio);
          } catch (err) {
            limitError = err as DomainError;
            done(limitError);
            return;
          }
          done(null, chunk);
        },
      });
      let readError: Error | undefined;
      source.once("error", (err: Error) => (readError = err));
      try {
        await pipeline(source, counter, createWriteStream(target, { flags: "wx", mode: p.executable ? 0o755 : 0o644 }));
      } catch (err) {
        // Remove the partial file, but never one that was already there (the "wx" open failed on it).
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") await rm(target, { force: true });
        if (limitError !== undefined) throw limitError;
        if (readError !== undefined) throw reject(p.index, p.name, `corrupt data (${readError.message})`);
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw reject(p.index, p.name, "target path already exists");
        throw err;
      }
      files++;
    }
    return { files, bytes: total };
  } finally {
    zf.close();
  }
}

function checkEntryRatio(p: PlannedEntry, bytes: number, maxRatio: number): void {
  if (bytes <= RATIO_FLOOR_BYTES) return;
  const ratio = bytes / Math.max(1, p.entry.compressedSize);
  if (ratio > maxRatio) {
    throw reject(p.index, p.name, `compression ratio ${Math.round(ratio)} exceeds the limit of ${maxRatio}`);
  }
}

function checkArchiveRatio(p: PlannedEntry | undefined, total: number, archiveBytes: number, maxRatio: number): void {
  if (p === undefined || total <= RATIO_FLOOR_BYTES) return;
  const ratio = total / Math.max(1, archiveBytes);
  if (ratio > maxRatio) {
    throw reject(p.index, p.name, `archive compression ratio ${Math.round(ratio)} exceeds the limit of ${maxRatio}`);
  }
}
