// Custom action types (owner Custom): their declaration as CreateCustomActionType and
// UpdateActionType take it, AWS's rules for it, and the provider spec pipelines using the type
// are validated against. Job workers work their jobs through JobService.

import type { FieldViolation } from "../errors.js";
import { ACTION_CATEGORIES, PROVIDER_PATTERN, PROVIDER_VERSION_PATTERN } from "../limits.js";
import type { ActionCategory } from "../limits.js";
import { q } from "./messages.js";
import type { ConfigurationFormat, ConfigurationProperty, ProviderSpec } from "./providers.js";
import { Violations } from "./violations.js";

/** AWS's quota of custom action types per account and region. */
export const MAX_CUSTOM_ACTION_TYPES = 50;
/** Job timeout of a custom action whose type sets none (AWS: 24 hours). */
export const DEFAULT_CUSTOM_TIMEOUT_MINUTES = 24 * 60;
/** AWS ActionConfigurationProperty.type values. */
export const CONFIGURATION_PROPERTY_TYPES = ["String", "Number", "Boolean"] as const;

const MAX_PROPERTIES = 10;
const MAX_PROPERTY_NAME = 50;
const MAX_DESCRIPTION = 160;
const MAX_TYPE_DESCRIPTION = 1024;
const MAX_URL = 2048;
const MAX_ARTIFACTS = 5;
const MIN_JOB_TIMEOUT_SECONDS = 60;
const MAX_JOB_TIMEOUT_SECONDS = 43_200;

/** A pipeline's value of a queryable property (what PollForJobs filters on). */
export const QUERYABLE_VALUE_PATTERN = /^[A-Za-z0-9_-]{1,20}$/;

/** One configuration property of a custom action type (AWS ActionConfigurationProperty). */
export interface CustomActionTypeProperty {
  name: string;
  required: boolean;
  key: boolean;
  secret: boolean;
  queryable: boolean;
  /** "" when not given. */
  description: string;
  /** String, Number, Boolean, or "" (String). */
  type: string;
}

/** AWS ArtifactDetails. */
export interface ArtifactCounts {
  minimumCount: number;
  maximumCount: number;
}

/** AWS ActionTypeSettings; "" for a link not given. */
export interface CustomActionTypeSettings {
  thirdPartyConfigurationUrl: string;
  entityUrlTemplate: string;
  executionUrlTemplate: string;
  revisionUrlTemplate: string;
}

/** A custom action type as stored: AWS's CreateCustomActionType input plus UpdateActionType's extras. */
export interface CustomActionType {
  category: string;
  provider: string;
  version: string;
  settings: CustomActionTypeSettings;
  configurationProperties: CustomActionTypeProperty[];
  inputArtifactDetails: ArtifactCounts;
  outputArtifactDetails: ArtifactCounts;
  /** ActionTypeDeclaration.description; "" when not given. */
  description: string;
  /** ActionTypeDeclaration.executor.jobTimeout in seconds; 0 = DEFAULT_CUSTOM_TIMEOUT_MINUTES. */
  jobTimeoutSeconds: number;
}

/** `Custom/<Category>/<Provider>/<Version>`: a custom action type's key (and the tail of its ARN). */
export function customActionTypeKey(id: { readonly category: string; readonly provider: string; readonly version: string }): string {
  return `Custom/${id.category}/${id.provider}/${id.version}`;
}

/**
 * Every problem of a custom action type's declaration, fields named as in CreateCustomActionType
 * (`configurationProperties[2].queryable`). Never throws.
 */
export function checkCustomActionType(t: CustomActionType): FieldViolation[] {
  const v = new Violations();
  if (t.category === "") v.add("category", "is required");
  else if (!(ACTION_CATEGORIES as readonly string[]).includes(t.category)) v.add("category", `must be one of ${ACTION_CATEGORIES.join(", ")}, got ${q(t.category)}`);
  if (!PROVIDER_PATTERN.test(t.provider)) v.add("provider", `must be 1-35 characters of A-Z a-z 0-9 _ -, got ${q(t.provider)}`);
  if (!PROVIDER_VERSION_PATTERN.test(t.version)) v.add("version", `must be 1-9 characters of A-Z a-z 0-9 _ -, got ${q(t.version)}`);
  checkCounts("inputArtifactDetails", t.inputArtifactDetails, v);
  checkCounts("outputArtifactDetails", t.outputArtifactDetails, v);
  if (t.description.length > MAX_TYPE_DESCRIPTION) v.add("description", `must be at most ${MAX_TYPE_DESCRIPTION} characters`);
  if (t.jobTimeoutSeconds !== 0 && (t.jobTimeoutSeconds < MIN_JOB_TIMEOUT_SECONDS || t.jobTimeoutSeconds > MAX_JOB_TIMEOUT_SECONDS)) {
    v.add("executor.jobTimeout", `must be ${MIN_JOB_TIMEOUT_SECONDS}-${MAX_JOB_TIMEOUT_SECONDS} seconds, got ${t.jobTimeoutSeconds}`);
  }

  const props = t.configurationProperties;
  if (props.length > MAX_PROPERTIES) v.add("configurationProperties", `must have at most ${MAX_PROPERTIES} properties, got ${props.length}`);
  const seen = new Map<string, number>();
  props.forEach((p, i) => {
    const path = `configurationProperties[${i}]`;
    if (p.name.length < 1 || p.name.length > MAX_PROPERTY_NAME) v.add(`${path}.name`, `must be 1-${MAX_PROPERTY_NAME} characters`);
    else if (seen.has(p.name)) v.add(`${path}.name`, `${q(p.name)} is already the name of configurationProperties[${seen.get(p.name)}]`);
    else seen.set(p.name, i);
    if (p.description.length > MAX_DESCRIPTION) v.add(`${path}.description`, `must be at most ${MAX_DESCRIPTION} characters`);
    if (p.type !== "" && !(CONFIGURATION_PROPERTY_TYPES as readonly string[]).includes(p.type)) {
      v.add(`${path}.type`, `must be one of ${CONFIGURATION_PROPERTY_TYPES.join(", ")}, got ${q(p.type)}`);
    }
    if (p.queryable && !p.required) v.add(`${path}.queryable`, "a queryable property must be required");
    if (p.queryable && p.secret) v.add(`${path}.queryable`, "a queryable property cannot be secret");
  });
  const queryable = props.flatMap((p, i) => (p.queryable ? [i] : []));
  if (queryable.length > 1) v.add(`configurationProperties[${queryable[1]}].queryable`, `only one property may be queryable; configurationProperties[${queryable[0]}] already is`);

  const templatable = new Set(props.filter((p) => p.required && !p.secret).map((p) => p.name));
  const s = t.settings;
  checkUrl("settings.thirdPartyConfigurationUrl", s.thirdPartyConfigurationUrl, undefined, false, v);
  checkUrl("settings.entityUrlTemplate", s.entityUrlTemplate, templatable, false, v);
  checkUrl("settings.executionUrlTemplate", s.executionUrlTemplate, templatable, true, v);
  checkUrl("settings.revisionUrlTemplate", s.revisionUrlTemplate, templatable, false, v);
  return v.result();
}

function checkCounts(path: string, counts: ArtifactCounts, v: Violations): void {
  for (const [field, n] of [["minimumCount", counts.minimumCount], ["maximumCount", counts.maximumCount]] as const) {
    if (!Number.isInteger(n) || n < 0 || n > MAX_ARTIFACTS) v.add(`${path}.${field}`, `must be 0-${MAX_ARTIFACTS}, got ${n}`);
  }
  if (counts.minimumCount > counts.maximumCount) v.add(`${path}.minimumCount`, `must not exceed maximumCount (${counts.maximumCount}), got ${counts.minimumCount}`);
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

/** A link (or URL template): 1-2048 characters, http(s), placeholders only of the properties a template may show. */
function checkUrl(path: string, value: string, templatable: ReadonlySet<string> | undefined, executionId: boolean, v: Violations): void {
  if (value === "") return;
  if (value.length > MAX_URL) {
    v.add(path, `must be at most ${MAX_URL} characters`);
    return;
  }
  if (!/^https?:\/\//i.test(value)) v.add(path, `must be an http:// or https:// URL, got ${q(value)}`);
  for (const [, name = ""] of value.matchAll(PLACEHOLDER)) {
    if (templatable === undefined) {
      v.add(path, "is a plain URL: it takes no {placeholders}");
    } else if (name === "ExternalExecutionId") {
      if (!executionId) v.add(path, "{ExternalExecutionId} is only known to executionUrlTemplate");
    } else if (name.startsWith("Config:")) {
      const property = name.slice("Config:".length);
      if (!templatable.has(property)) v.add(path, `{${name}} must name a required, non-secret configuration property`);
    } else {
      v.add(path, `{${name}} is not a placeholder: use {Config:<property>}${executionId ? " or {ExternalExecutionId}" : ""}`);
    }
  }
}

/** How a property's pipeline values are checked. */
function formatOf(p: CustomActionTypeProperty): ConfigurationFormat {
  if (p.queryable) return "queryable";
  if (p.type === "Number") return "number";
  if (p.type === "Boolean") return "boolean";
  return "text";
}

/**
 * The provider spec of a custom action type: what validation judges a pipeline's action of the
 * type by (its configuration keys, required ones and artifact counts). Sluice does not run it:
 * `builtIn` is `Custom`, and its jobs go to job workers.
 */
export function customActionTypeSpec(t: CustomActionType): ProviderSpec {
  const configuration: Record<string, ConfigurationProperty> = {};
  for (const p of t.configurationProperties) {
    configuration[p.name] = { required: p.required, format: formatOf(p), description: p.description === "" ? `${p.type || "String"} property of ${customActionTypeKey(t)}` : p.description };
  }
  return {
    key: customActionTypeKey(t),
    category: t.category as ActionCategory,
    owner: "Custom",
    provider: t.provider,
    version: t.version,
    builtIn: "Custom",
    alias: false,
    inputArtifacts: { min: t.inputArtifactDetails.minimumCount, max: t.inputArtifactDetails.maximumCount },
    outputArtifacts: { min: t.outputArtifactDetails.minimumCount, max: t.outputArtifactDetails.maximumCount },
    defaultTimeoutMinutes: t.jobTimeoutSeconds === 0 ? DEFAULT_CUSTOM_TIMEOUT_MINUTES : Math.ceil(t.jobTimeoutSeconds / 60),
    configuration,
    requiredConfiguration: t.configurationProperties.filter((p) => p.required).map((p) => p.name),
    commands: "none",
    // A worker's PutJobSuccessResult may set any output variable.
    outputVariables: "declared",
    route: "worker",
    secretConfiguration: t.configurationProperties.filter((p) => p.secret).map((p) => p.name),
  };
}

/** The name of a custom action type's queryable property, if it has one. */
export function queryablePropertyOf(t: CustomActionType): string | undefined {
  return t.configurationProperties.find((p) => p.queryable)?.name;
}
