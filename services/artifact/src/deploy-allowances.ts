import type { Collection, Db } from "mongodb";

/**
 * What one ObjectStore deploy job may write, recorded when the orchestrator asks for the job's
 * grants (it alone knows the job's resolved configuration). IssueDeployGrants signs PUTs only
 * inside it, so a runner token is no credential for any other bucket, key or action execution.
 */
export interface DeployAllowance {
  /** The action execution of the deploy job. */
  _id: string;
  pipelineName: string;
  bucket: string;
  /** Key prefix without trailing "/" when `extract` ("" = bucket root), else the one key. */
  objectKey: string;
  extract: boolean;
  /** The job's deadline: no grant is issued after it. */
  expiresAt: Date;
}

/** Persistence of deploy allowances (`sluice_artifacts.deploy_allowances`). */
export interface DeployAllowanceStore {
  /** Records (or refreshes, for a re-published job) the allowance of one action execution. */
  put(allowance: DeployAllowance): Promise<void>;
  get(actionExecutionId: string): Promise<DeployAllowance | null>;
}

export function createDeployAllowanceStore(db: Db): DeployAllowanceStore {
  const allowances: Collection<DeployAllowance> = db.collection<DeployAllowance>("deploy_allowances");
  return {
    async put(allowance) {
      const { _id, ...fields } = allowance;
      await allowances.updateOne({ _id }, { $set: fields }, { upsert: true });
    },
    get(actionExecutionId) {
      return allowances.findOne({ _id: actionExecutionId });
    },
  };
}
