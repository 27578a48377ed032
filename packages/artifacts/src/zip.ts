import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DomainError } from "@sluice/domain";
import yazl from "yazl";
import { compileGlob, type Glob } from "./glob.js";

/** What {@link zipDirectory} wrote. */
export interface ZipResult {
  /** Lowercase hex SHA-256 of the zip file. */
  sha256: string;
  sizeBytes: number;
  /** Number of files in the archive. */
  files: number;
  /** Symbolic links found under the directory and left out (they are never followed; see zipDirectory). */
  skippedSymlinks: string[];
}

// Fixed metadata makes the archive a function of the tree's paths, contents and executable bits only.
// DOS timestamps are local time, so the date is built from local fields to encode the same bytes in
// every time zone.
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const FILE_MODE = 0o100644;
const EXEC_MODE = 0o100755;

interface FoundFile {
  rel: string;
  abs: string;
  executable: boolean;
}

// Plain code-unit order (not locale order) so every machine sorts the same way.
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function walk(root: string, rel: string, out: FoundFile[], symlinks: string[]): Promise<void> {
  const dir = rel === "" ? root : join(root, rel);
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => byName(a.name, b.name));
  for (const entry of entries) {
    const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (entry.isSymbolicLink()) {
      // Following links would let a build copy any file of the host (say /etc/passwd) into an artifact.
      symlinks.push(childRel);
    } else if (entry.isDirectory()) {
      await walk(root, childRel, out, symlinks);
    } else if (entry.isFile()) {
      if (entry.name.includes("\\")) {
        // yazl would turn the backslash into a separator, silently changing the path.
        const message = `${JSON.stringify(childRel)}: file names with a backslash cannot be stored in a zip`;
        throw new DomainError("ValidationException", message, [{ field: "dir", message }]);
      }
      const abs = join(root, childRel);
      const st = await lstat(abs);
      out.push({ rel: childRel, abs, executable: (st.mode & 0o111) !== 0 });
    }
    // Sockets, FIFOs and devices are not artifact content.
  }
}

// A file is selected when a glob matches its path, or when a literal pattern (no `*`/`?`) names it or one
// of its parent directories ("dist" = all of dist; "*" stays top-level files only).
function selected(rel: string, globs: readonly Glob[]): boolean {
  if (globs.length === 0) return true;
  if (globs.some((g) => g.matches(rel))) return true;
  const literal = globs.filter((g) => !/[*?]/.test(g.pattern));
  for (let slash = rel.lastIndexOf("/"); slash > 0; slash = rel.lastIndexOf("/", slash - 1)) {
    const dir = rel.slice(0, slash);
    if (literal.some((g) => g.matches(dir))) return true;
  }
  return false;
}

/**
 * Zips the regular files under `dir` selected by `patterns` (globs relative to `dir`: `*`, `?`, `**` match files; a
 * wildcard-free pattern naming a directory selects everything under it; `[]` = everything) into `outFile`. Entries are
 * sorted and carry fixed timestamps and modes (0644, or 0755 when executable), so the same tree always
 * gives the same bytes. Symbolic links are not followed and not stored (listed in `skippedSymlinks`);
 * empty directories are not stored. Throws `ValidationException` for a bad pattern (field `patterns[i]`).
 */
export async function zipDirectory(dir: string, patterns: readonly string[], outFile: string): Promise<ZipResult> {
  const globs = patterns.map((p, i) => compileGlob(p, `patterns[${i}]`));
  const found: FoundFile[] = [];
  const skippedSymlinks: string[] = [];
  await walk(dir, "", found, skippedSymlinks);
  const files = found.filter((f) => selected(f.rel, globs));

  const zip = new yazl.ZipFile();
  for (const f of files) {
    zip.addFile(f.abs, f.rel, {
      mtime: FIXED_MTIME,
      mode: f.executable ? EXEC_MODE : FILE_MODE,
      compress: true,
      forceDosTimestamp: true,
    });
  }
  zip.end();

  const hash = createHash("sha256");
  let sizeBytes = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      sizeBytes += chunk.length;
      done(null, chunk);
    },
  });
  // yazl reports read errors of added files on the ZipFile itself, not on its output stream: fail the pipeline.
  zip.on("error", (err: Error) => measure.destroy(err));
  await pipeline(zip.outputStream, measure, createWriteStream(outFile));
  return { sha256: hash.digest("hex"), sizeBytes, files: files.length, skippedSymlinks };
}
