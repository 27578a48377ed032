import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256File } from "./checksum.js";
import { extractZip } from "./extract.js";
import { zipDirectory } from "./zip.js";

// expect.stringMatching is typed `any`; as `unknown` it can sit inside toMatchObject shapes.
const matching = (re: RegExp): unknown => expect.stringMatching(re);

let work: string;
let tree: string;

const FILES: Record<string, string> = {
  "README.md": "# readme\n",
  ".env": "HIDDEN=1\n",
  "src/index.ts": "export const x = 1;\n",
  "src/lib/util.ts": "export const y = 2;\n",
  "src/lib/deep/a/b/c.txt": "deep\n",
  "dist/app.js": "console.log('app');\n",
  "dist/app.js.map": "{}",
  "dist/assets/logo.svg": "<svg/>",
  "bin/run.sh": "#!/bin/sh\necho hi\n",
  "empty.bin": "",
};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "artifacts-zip-"));
  tree = join(work, "tree");
  for (const [rel, content] of Object.entries(FILES)) {
    await mkdir(join(tree, rel, ".."), { recursive: true });
    await writeFile(join(tree, rel), content);
  }
  await chmod(join(tree, "bin/run.sh"), 0o755);
  await mkdir(join(tree, "empty-dir"));
  await symlink("/etc/passwd", join(tree, "src/passwd-link"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function roundTrip(patterns: string[], name: string): Promise<{ files: string[]; dir: string }> {
  const zip = join(work, `${name}.zip`);
  const result = await zipDirectory(tree, patterns, zip);
  const dir = join(work, `${name}-out`);
  const extracted = await extractZip(zip, dir);
  expect(extracted.files).toBe(result.files);
  const files: string[] = [];
  for (const rel of Object.keys(FILES)) {
    const exists = await stat(join(dir, rel)).then(
      () => true,
      () => false,
    );
    if (exists) {
      files.push(rel);
      expect(await readFile(join(dir, rel), "utf8")).toBe(FILES[rel]);
    }
  }
  return { files: files.sort(), dir };
}

describe("zipDirectory + extractZip", () => {
  it("round-trips a whole tree with nested dirs, dotfiles and the executable bit", async () => {
    const zip = join(work, "all.zip");
    const result = await zipDirectory(tree, [], zip);
    expect(result.files).toBe(Object.keys(FILES).length);
    expect(result.sizeBytes).toBe((await stat(zip)).size);
    expect(result.sha256).toBe(await sha256File(zip));
    expect(result.skippedSymlinks).toEqual(["src/passwd-link"]);

    const { files, dir } = await roundTrip([], "all");
    expect(files).toEqual(Object.keys(FILES).sort());
    expect((await stat(join(dir, "bin/run.sh"))).mode & 0o111).not.toBe(0);
    expect((await stat(join(dir, "README.md"))).mode & 0o111).toBe(0);
    await expect(stat(join(dir, "src/passwd-link"))).rejects.toThrow(/ENOENT/);
  });

  it("is deterministic: the same tree zips to the same bytes", async () => {
    const a = await zipDirectory(tree, [], join(work, "det-a.zip"));
    const b = await zipDirectory(tree, [], join(work, "det-b.zip"));
    expect(a.sha256).toBe(b.sha256);
  });

  it.each<[string[], string[]]>([
    [["dist/*.js"], ["dist/app.js"]],
    [["dist"], ["dist/app.js", "dist/app.js.map", "dist/assets/logo.svg"]],
    [["**/*.ts"], ["src/index.ts", "src/lib/util.ts"]],
    [["src/**/c.txt", "README.md"], ["README.md", "src/lib/deep/a/b/c.txt"]],
    [["*"], Object.keys(FILES).filter((f) => !f.includes("/"))],
    [["nothing-matches/**"], []],
  ])("selects files by globs %j", async (patterns, expected) => {
    const { files } = await roundTrip(patterns, `glob-${patterns.join("_").replace(/[^a-z]/gi, "")}`);
    expect(files).toEqual([...expected].sort());
  });

  it("refuses a pattern that escapes the directory, naming it", async () => {
    await expect(zipDirectory(tree, ["dist/**", "../secrets"], join(work, "bad.zip"))).rejects.toMatchObject({
      code: "ValidationException",
      message: matching(/^patterns\[1\]: /),
    });
  });
});
