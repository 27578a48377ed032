// AWS's two shapes of an action type (ActionType for Create/List, ActionTypeDeclaration for
// Get/Update) to and from the stored definition, for custom and built-in types alike.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CustomActionType, CustomActionTypeProperty, ProviderSpec } from "@sluice/domain";
import type {
  ActionConfigurationProperty,
  ActionTypeDeclaration,
  ActionTypeDeclarationSchema,
  ActionTypeSchema,
  ActionTypeSettings,
  CreateCustomActionTypeRequest,
} from "@sluice/proto";

export type ActionTypeInit = MessageInitShape<typeof ActionTypeSchema>;
export type ActionTypeDeclarationInit = MessageInitShape<typeof ActionTypeDeclarationSchema>;

/** The executor of every type whose jobs are worked through JobService (AWS JobWorker). */
export const JOB_WORKER_EXECUTOR = "JobWorker";

function settingsOf(s: ActionTypeSettings | undefined): CustomActionType["settings"] {
  return {
    thirdPartyConfigurationUrl: s?.thirdPartyConfigurationUrl ?? "",
    entityUrlTemplate: s?.entityUrlTemplate ?? "",
    executionUrlTemplate: s?.executionUrlTemplate ?? "",
    revisionUrlTemplate: s?.revisionUrlTemplate ?? "",
  };
}

function propertyOf(p: ActionConfigurationProperty): CustomActionTypeProperty {
  return { name: p.name, required: p.required, key: p.key, secret: p.secret, queryable: p.queryable, description: p.description, type: p.type };
}

/** A CreateCustomActionType request as a definition (no description, default job timeout). */
export function definitionOfCreate(req: CreateCustomActionTypeRequest): CustomActionType {
  return {
    category: req.category,
    provider: req.provider,
    version: req.version,
    settings: settingsOf(req.settings),
    configurationProperties: req.configurationProperties.map(propertyOf),
    inputArtifactDetails: { minimumCount: req.inputArtifactDetails?.minimumCount ?? 0, maximumCount: req.inputArtifactDetails?.maximumCount ?? 0 },
    outputArtifactDetails: { minimumCount: req.outputArtifactDetails?.minimumCount ?? 0, maximumCount: req.outputArtifactDetails?.maximumCount ?? 0 },
    description: "",
    jobTimeoutSeconds: 0,
  };
}

/**
 * An UpdateActionType declaration as a definition. ActionTypeProperty has no `type`: a property
 * keeps the type it had under the same name.
 */
export function definitionOfDeclaration(d: ActionTypeDeclaration, before: CustomActionType): CustomActionType {
  const typeOf = new Map(before.configurationProperties.map((p) => [p.name, p.type]));
  return {
    category: d.id?.category ?? "",
    provider: d.id?.provider ?? "",
    version: d.id?.version ?? "",
    settings: {
      thirdPartyConfigurationUrl: d.urls?.configurationUrl ?? "",
      entityUrlTemplate: d.urls?.entityUrlTemplate ?? "",
      executionUrlTemplate: d.urls?.executionUrlTemplate ?? "",
      revisionUrlTemplate: d.urls?.revisionUrlTemplate ?? "",
    },
    configurationProperties: d.properties.map((p) => ({
      name: p.name,
      required: !p.optional,
      key: p.key,
      secret: p.noEcho,
      queryable: p.queryable,
      description: p.description,
      type: typeOf.get(p.name) ?? "",
    })),
    inputArtifactDetails: { minimumCount: d.inputArtifactDetails?.minimumCount ?? 0, maximumCount: d.inputArtifactDetails?.maximumCount ?? 0 },
    outputArtifactDetails: { minimumCount: d.outputArtifactDetails?.minimumCount ?? 0, maximumCount: d.outputArtifactDetails?.maximumCount ?? 0 },
    description: d.description,
    jobTimeoutSeconds: d.executor?.jobTimeout ?? 0,
  };
}

/**
 * A CreateCustomActionType field path as UpdateActionType names it
 * (`configurationProperties[1].queryable` → `actionType.properties[1].queryable`).
 */
export function declarationField(field: string): string {
  const renamed = field
    .replace(/^configurationProperties/, "properties")
    .replace(/^(properties\[\d+\])\.required$/, "$1.optional")
    .replace(/^(properties\[\d+\])\.secret$/, "$1.noEcho")
    .replace(/^settings\.thirdPartyConfigurationUrl$/, "urls.configurationUrl")
    .replace(/^settings\./, "urls.")
    .replace(/^(category|provider|version)$/, "id.$1");
  return `actionType.${renamed}`;
}

/** A custom type in AWS's ActionType shape. */
export function actionTypeOf(d: CustomActionType): ActionTypeInit {
  return {
    id: { category: d.category, owner: "Custom", provider: d.provider, version: d.version },
    settings: { ...d.settings },
    actionConfigurationProperties: d.configurationProperties.map((p) => ({ ...p })),
    inputArtifactDetails: { ...d.inputArtifactDetails },
    outputArtifactDetails: { ...d.outputArtifactDetails },
  };
}

/** A custom type in AWS's ActionTypeDeclaration shape. */
export function declarationOf(d: CustomActionType): ActionTypeDeclarationInit {
  return {
    description: d.description,
    executor: { type: JOB_WORKER_EXECUTOR, configuration: { jobWorkerExecutorConfiguration: {} }, jobTimeout: d.jobTimeoutSeconds },
    id: { category: d.category, owner: "Custom", provider: d.provider, version: d.version },
    inputArtifactDetails: { ...d.inputArtifactDetails },
    outputArtifactDetails: { ...d.outputArtifactDetails },
    permissions: { allowedAccounts: [] },
    properties: d.configurationProperties.map((p) => ({ name: p.name, optional: !p.required, key: p.key, noEcho: p.secret, queryable: p.queryable, description: p.description })),
    urls: {
      configurationUrl: d.settings.thirdPartyConfigurationUrl,
      entityUrlTemplate: d.settings.entityUrlTemplate,
      executionUrlTemplate: d.settings.executionUrlTemplate,
      revisionUrlTemplate: d.settings.revisionUrlTemplate,
    },
  };
}

/** A built-in type (Git, Commands, … and the AWS names Sluice accepts) in AWS's ActionType shape. */
export function builtInActionTypeOf(spec: ProviderSpec): ActionTypeInit {
  return {
    id: { category: spec.category, owner: spec.owner, provider: spec.provider, version: spec.version },
    settings: {},
    actionConfigurationProperties: Object.entries(spec.configuration).map(([name, p]) => ({
      name,
      required: p.required,
      key: false,
      secret: false,
      queryable: false,
      description: p.description,
      type: p.format === "boolean" ? "Boolean" : "String",
    })),
    inputArtifactDetails: { minimumCount: spec.inputArtifacts.min, maximumCount: spec.inputArtifacts.max },
    outputArtifactDetails: { minimumCount: spec.outputArtifacts.min, maximumCount: spec.outputArtifacts.max },
  };
}

/** A built-in type in AWS's ActionTypeDeclaration shape. */
export function builtInDeclarationOf(spec: ProviderSpec): ActionTypeDeclarationInit {
  return {
    description: `${spec.alias ? `AWS's ${spec.provider}, run by Sluice as ` : ""}the built-in ${spec.builtIn} provider`,
    executor: { type: JOB_WORKER_EXECUTOR, configuration: { jobWorkerExecutorConfiguration: {} }, jobTimeout: spec.defaultTimeoutMinutes * 60 },
    id: { category: spec.category, owner: spec.owner, provider: spec.provider, version: spec.version },
    inputArtifactDetails: { minimumCount: spec.inputArtifacts.min, maximumCount: spec.inputArtifacts.max },
    outputArtifactDetails: { minimumCount: spec.outputArtifacts.min, maximumCount: spec.outputArtifacts.max },
    permissions: { allowedAccounts: [] },
    properties: Object.entries(spec.configuration).map(([name, p]) => ({ name, optional: !p.required, key: false, noEcho: false, queryable: false, description: p.description })),
    urls: {},
  };
}
