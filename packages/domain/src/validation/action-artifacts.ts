// An action's input and output artifacts: names, producers, counts and the
// files a Commands action packs.

import { LIMITS } from "../limits.js";
import { q } from "./messages.js";
import { checkArtifactName } from "./names.js";
import { describe, runsBefore } from "./positions.js";
import type { Declared } from "./positions.js";
import type { ArtifactBounds, ProviderSpec } from "./providers.js";
import type { Violations } from "./violations.js";

export function checkInputArtifacts(here: Declared, outputs: ReadonlyMap<string, Declared>, v: Violations): void {
  const seen = new Set<string>();
  here.decl.inputArtifacts.forEach((input, i) => {
    const path = `${here.path}.inputArtifacts[${i}].name`;
    if (!checkArtifactName(path, input.name, v)) return;
    if (seen.has(input.name)) {
      v.add(path, `${q(input.name)} is listed twice`);
      return;
    }
    seen.add(input.name);
    const producer = outputs.get(input.name);
    if (producer === undefined || !runsBefore(producer, here)) {
      v.add(path, `${q(input.name)} is not produced by an earlier action`);
    }
  });
}

export function checkOutputArtifacts(
  here: Declared,
  spec: ProviderSpec | undefined,
  outputs: ReadonlyMap<string, Declared>,
  v: Violations,
): void {
  const seen = new Set<string>();
  here.decl.outputArtifacts.forEach((output, o) => {
    const path = `${here.path}.outputArtifacts[${o}]`;
    if (checkArtifactName(`${path}.name`, output.name, v)) {
      const first = outputs.get(output.name);
      if (first !== undefined && first.path !== here.path) {
        v.add(`${path}.name`, `${q(output.name)} is already produced by ${describe(first)}`);
      } else if (seen.has(output.name)) {
        v.add(`${path}.name`, `${q(output.name)} is listed twice`);
      }
      seen.add(output.name);
    }
    const files = output.files;
    if (files.length === 0) return;
    if (spec !== undefined && spec.builtIn !== "Commands") {
      v.add(`${path}.files`, `only Commands actions choose the files of an artifact; ${spec.key} does not`);
      return;
    }
    if (files.length > LIMITS.maxOutputFiles) {
      v.add(`${path}.files`, `at most ${LIMITS.maxOutputFiles} entries, got ${files.length}`);
    }
    files.forEach((file, f) => {
      if (file.length < 1 || file.length > LIMITS.maxOutputFileLength) {
        v.add(`${path}.files[${f}]`, `must be 1-${LIMITS.maxOutputFileLength} characters, got ${file.length}`);
      } else if (!isRelativePath(file)) {
        v.add(`${path}.files[${f}]`, `${q(file)} must be a relative path inside the workspace`);
      }
    });
  });
}

function isRelativePath(file: string): boolean {
  if (file.startsWith("/") || file.includes("\\") || file.includes("\0") || /^[A-Za-z]:/.test(file)) return false;
  return !file.split("/").includes("..");
}

export function checkArtifactCount(
  path: string,
  spec: ProviderSpec,
  kind: "input" | "output",
  bounds: ArtifactBounds,
  count: number,
  v: Violations,
): void {
  if (count >= bounds.min && count <= bounds.max) return;
  const range =
    bounds.max === 0
      ? `no ${kind} artifacts`
      : bounds.min === bounds.max
        ? `exactly ${bounds.min} ${kind} artifact${bounds.min === 1 ? "" : "s"}`
        : `${bounds.min} to ${bounds.max} ${kind} artifacts`;
  v.add(path, `${spec.key} takes ${range}, got ${count}`);
}
