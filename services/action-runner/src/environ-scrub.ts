import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

/**
 * Overwrites the values of `names` in this process's initial environment block, the bytes
 * `/proc/<pid>/environ` shows, and removes them from `process.env`.
 *
 * `delete process.env.X` alone is not enough: it drops the pointer from libc's `environ`, but
 * `/proc/<pid>/environ` reads the original block on the process's stack (between the
 * `env_start` and `env_end` fields of `/proc/self/stat`), which nothing in Node rewrites. A
 * process may write its own memory through `/proc/self/mem`, so the values are replaced there
 * with `*` (same length, so no other variable moves). Called once, after the configuration has
 * been read and before the first job can start.
 *
 * Returns the names that were scrubbed; throws when the block cannot be rewritten (no procfs),
 * which the caller logs.
 */
export function scrubEnviron(names: readonly string[]): string[] {
  const wanted = new Set(names);
  if (wanted.size === 0) return [];
  const stat = readFileSync("/proc/self/stat", "utf8");
  // Fields after the parenthesised command name start at field 3; env_start/env_end are 50/51.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const envStart = Number(fields[50 - 3]);
  const envEnd = Number(fields[51 - 3]);
  if (!Number.isSafeInteger(envStart) || !Number.isSafeInteger(envEnd) || envEnd <= envStart) {
    throw new Error("cannot locate the environment block in /proc/self/stat");
  }
  const block = readFileSync("/proc/self/environ");
  const scrubbed: string[] = [];
  const fd = openSync("/proc/self/mem", "r+");
  try {
    let offset = 0;
    while (offset < block.length) {
      let end = block.indexOf(0, offset);
      if (end === -1) end = block.length;
      const eq = block.indexOf(0x3d, offset);
      if (eq !== -1 && eq < end) {
        const name = block.toString("utf8", offset, eq);
        const valueLength = end - eq - 1;
        if (wanted.has(name) && valueLength > 0) {
          writeSync(fd, Buffer.alloc(valueLength, 0x2a), 0, valueLength, envStart + eq + 1);
          scrubbed.push(name);
        }
      }
      offset = end + 1;
    }
  } finally {
    closeSync(fd);
  }
  for (const name of wanted) Reflect.deleteProperty(process.env, name);
  return scrubbed;
}
