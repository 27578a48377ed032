import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import { importX } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

const root = import.meta.dirname;
const workspaces = ["packages", "services", "examples"]
  .flatMap((group) => readdirSync(join(root, group)).map((name) => `${group}/${name}`))
  .concat("test")
  .filter((dir) => existsSync(join(root, dir, "package.json")));
// The system tests are a workspace of their own; elsewhere tests sit beside the code or under test/.
// The testkit's vitest wiring (global setup, typed inject) only ever runs inside vitest.
const testFilesOf = (dir) =>
  dir === "test"
    ? ["test/**"]
    : [`${dir}/**/*.test.ts`, `${dir}/test/**`, ...(dir === "packages/testkit" ? [`${dir}/src/global-setup.ts`, `${dir}/src/vitest-context.ts`] : [])];
const extraneous = (packageDir, devDependencies) => [
  "error",
  { packageDir, devDependencies, optionalDependencies: false, peerDependencies: false, includeTypes: true },
];

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/src/gen/**", "*.config.*", "scripts/**", "deploy/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true } },
    plugins: { "import-x": importX },
    settings: {
      // Without these the plugin reads no .ts dependency, and sees no cycle through one.
      "import-x/extensions": importX.flatConfigs.typescript.settings["import-x/extensions"],
      "import-x/parsers": importX.flatConfigs.typescript.settings["import-x/parsers"],
      // Workspace packages resolve to their TypeScript sources, so a cycle is seen without a build.
      "import-x/resolver-next": [createTypeScriptImportResolver({ conditionNames: ["@sluice/source", "types", "import", "node", "default"] })],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/explicit-module-boundary-types": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "no-console": "error",
      "no-restricted-syntax": ["error", { selector: "ExportAllDeclaration", message: "Name every export." }],
      "no-restricted-imports": ["error", { patterns: [{ group: ["@sluice/*/src/*", "**/services/*"], message: "Import a package's public entry, never a service." }] }],
      "import-x/no-cycle": "error",
    },
  },
  {
    files: ["**/main.ts", "**/bin.ts", "**/*.test.ts", "**/test/**"],
    rules: { "no-console": "off", "@typescript-eslint/explicit-module-boundary-types": "off" },
  },
  // Each workspace package imports only what its own package.json declares (types too: they ship in
  // its .d.ts); its tests may also use its devDependencies and the
  // root's shared tooling (vitest, fast-check).
  ...workspaces.flatMap((dir) => [
    { files: [`${dir}/**/*.ts`], rules: { "import-x/no-extraneous-dependencies": extraneous([join(root, dir)], false) } },
    {
      files: testFilesOf(dir),
      rules: { "import-x/no-extraneous-dependencies": extraneous([join(root, dir), root], true) },
    },
  ]),
);
