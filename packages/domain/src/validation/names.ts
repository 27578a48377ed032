// Names and ARNs: the checks shared by pipelines, stages, actions, artifacts and rules.

import { ARTIFACT_NAME_PATTERN, LIMITS, ROLE_ARN_PATTERN } from "../limits.js";
import { q } from "./messages.js";
import type { Violations } from "./violations.js";

const NAME_RULE = "1-100 characters of A-Z a-z 0-9 . @ _ -";

export function checkName(path: string, name: string, pattern: RegExp, v: Violations): void {
  if (name === "") v.add(path, "is required");
  else if (!pattern.test(name)) v.add(path, `must be ${NAME_RULE}, got ${q(name)}`);
}

export function checkArtifactName(path: string, name: string, v: Violations): boolean {
  if (name === "") {
    v.add(path, "is required");
    return false;
  }
  if (!ARTIFACT_NAME_PATTERN.test(name)) {
    v.add(path, `must be 1-100 characters of A-Z a-z 0-9 _ -, got ${q(name)}`);
    return false;
  }
  return true;
}

export function checkRoleArn(path: string, arn: string, v: Violations): void {
  if (arn === "") return; // optional in Sluice: IAM roles mean nothing here
  if (arn.length > LIMITS.maxRoleArnLength || !ROLE_ARN_PATTERN.test(arn)) {
    v.add(path, `must be an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>), got ${q(arn)}`);
  }
}
