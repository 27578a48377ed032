import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/src/gen/**", "*.config.*", "scripts/**", "deploy/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/explicit-module-boundary-types": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "no-console": "error",
      "no-restricted-syntax": ["error", { selector: "ExportAllDeclaration", message: "Name every export." }],
      "no-restricted-imports": ["error", { patterns: [{ group: ["@sluice/*/src/*", "**/services/*"], message: "Import a package's public entry, never a service." }] }],
    },
  },
  {
    files: ["**/main.ts", "**/bin.ts", "**/*.test.ts", "**/test/**"],
    rules: { "no-console": "off", "@typescript-eslint/explicit-module-boundary-types": "off" },
  },
);
