// The action types Sluice runs, and how AWS's action types map onto them.
//
// Sluice has four built-in providers: Git (source), Commands (shell commands),
// Manual (approval) and ObjectStore (deploy to a bucket). A pipeline JSON written
// for AWS names AWS's providers (CodeCommit, CodeStarSourceConnection, GitHub,
// CodeBuild, S3); the table below accepts those names as aliases of a built-in,
// so such a file runs after the smallest possible edit:
//
// - Git-family sources (CodeCommit, CodeStarSourceConnection, GitHub v1) run as
//   Git from `configuration.RepositoryUrl`. Sluice has no AWS account to resolve
//   a CodeCommit repository name or a CodeStar connection into a clone URL, and
//   guessing one (e.g. github.com from a connection's repository id) would clone
//   the wrong thing for GitLab/Bitbucket connections, so the URL is required and
//   its absence is reported naming `configuration.RepositoryUrl`. AWS's own keys
//   (RepositoryName, FullRepositoryId, ConnectionArn, Owner, Repo, ...) stay
//   accepted and kept, so GetPipeline returns the file as it was written.
// - CodeBuild runs as Commands when the action lists `commands` or gives a
//   `BuildSpec`: Sluice cannot run a CodeBuild project (ProjectName is kept but
//   not used), so it never reads a buildspec.yml the project would have named.
// - S3 deploy runs as ObjectStore (same configuration keys), and so does the S3 source:
//   `Source/S3` runs as `Source/ObjectStore` (S3Bucket, S3ObjectKey, PollForSourceChanges).
//
// Configuration keys outside a provider's list are rejected: a misspelt key
// (`BranchNmae`) would otherwise be ignored silently.

import type { ActionDeclaration } from "@sluice/proto";
import type { ActionCategory, ActionOwner } from "../limits.js";

/**
 * The providers Sluice itself runs; every accepted action type maps to one. `Custom` stands for
 * every custom action type (owner Custom): Sluice does not run it, job workers do (JobService).
 */
export type BuiltInProvider = "Git" | "Commands" | "Manual" | "ObjectStore" | "Http" | "Custom";

/** Who runs a job: the action-runner pool, the approval service, or job workers (custom types). */
export type ProviderRoute = "runner" | "approval" | "worker";

/**
 * How a configuration value is checked:
 * - `text`: any value (length limits only);
 * - `git-url`: an http(s)/ssh/git/file URL or scp-style `user@host:path`;
 * - `git-branch`: a branch name that cannot be read as a git option;
 * - `boolean`: `"true"` or `"false"`;
 * - `bucket-name`: an S3 bucket name (unless it references a variable);
 * - `code-zip`: AWS's OutputArtifactFormat, of which Sluice produces `CODE_ZIP` only;
 * - `commands`: newline-separated shell commands (Commands' configuration form);
 * - `http-url`: an absolute http(s) URL without userinfo (the Http invoke endpoint);
 * - `runner-pool`: a runner pool name (see `RUNNER_POOL_PATTERN`), never a variable;
 * - `number`: a decimal number (custom types' Number properties), unless it references a variable;
 * - `queryable`: a custom type's queryable property: 1-20 characters of A-Z a-z 0-9 _ -;
 * - `source-bucket`: an S3 bucket name, never a variable (the source poller reads it outside executions);
 * - `source-object-key`: an object key, never a variable, for the same reason.
 */
export type ConfigurationFormat =
  | "text"
  | "git-url"
  | "git-branch"
  | "boolean"
  | "bucket-name"
  | "code-zip"
  | "commands"
  | "http-url"
  | "runner-pool"
  | "number"
  | "queryable"
  | "source-bucket"
  | "source-object-key";

/** One configuration key a provider accepts. */
export interface ConfigurationProperty {
  readonly required: boolean;
  readonly format: ConfigurationFormat;
  /** What the key means for Sluice (shown in docs and error hints). */
  readonly description: string;
}

/** Inclusive bounds on how many input or output artifacts an action has. */
export interface ArtifactBounds {
  readonly min: number;
  readonly max: number;
}

/**
 * Where a Commands-type action takes its commands from:
 * `list-or-configuration` = the `commands` list or `configuration.Commands`;
 * `list` = the `commands` list only (CodeBuild alias); `none` = not a commands action.
 */
export type CommandsSource = "list-or-configuration" | "list" | "none";

/** One accepted action type (category/owner/provider/version) and how Sluice runs it. */
export interface ProviderSpec {
  /** Table key, `Category/Provider`. */
  readonly key: string;
  readonly category: ActionCategory;
  readonly owner: ActionOwner;
  /** The provider name as written in declarations (`Git`, `CodeCommit`, ...). */
  readonly provider: string;
  /** The only action type version accepted. */
  readonly version: string;
  /** The built-in provider that runs it; job subjects use this name. */
  readonly builtIn: BuiltInProvider;
  /** True when `provider` is an AWS provider name mapped onto `builtIn`. */
  readonly alias: boolean;
  readonly inputArtifacts: ArtifactBounds;
  readonly outputArtifacts: ArtifactBounds;
  /** Job timeout when the action sets no `timeoutInMinutes`. */
  readonly defaultTimeoutMinutes: number;
  /** Every configuration key the provider accepts. */
  readonly configuration: Readonly<Record<string, ConfigurationProperty>>;
  /** The keys of `configuration` that must be present. */
  readonly requiredConfiguration: readonly string[];
  readonly commands: CommandsSource;
  /**
   * Output variables the action produces: a fixed list, or `declared` for the
   * names the action lists in `outputVariables` (Commands), or `any` for what a job worker
   * reports (custom types: not declared on the action).
   */
  readonly outputVariables: "declared" | "any" | readonly string[];
  readonly route: ProviderRoute;
  /** Configuration keys whose values are secrets (custom types' secret properties): masked in every answer. */
  readonly secretConfiguration?: readonly string[];
}

/** Output variables of every Git source execution (the runner sets all of them). */
export const GIT_OUTPUT_VARIABLES: readonly string[] = ["CommitId", "BranchName", "CommitMessage", "AuthorDate", "CommitterDate"];

/** Output variables of every ObjectStore source execution (AWS's S3 source names). */
export const OBJECT_SOURCE_OUTPUT_VARIABLES: readonly string[] = ["ETag", "VersionId"];

/** Branch a Git source follows when its configuration names none. */
export const DEFAULT_BRANCH = "main";

/**
 * Job timeout (minutes) per built-in provider when the action sets none,
 * following AWS's defaults: approvals wait 7 days, S3 deploys 90 minutes,
 * other actions 1 hour. Aliases may differ (CodeBuild: 8 hours, as AWS).
 */
export const DEFAULT_TIMEOUT_MINUTES: Readonly<Record<BuiltInProvider, number>> = {
  Git: 60,
  Commands: 60,
  Manual: 7 * 24 * 60,
  ObjectStore: 90,
  // AWS's Lambda invoke default: the endpoint answers within the call or through JobService.
  Http: 60,
  // AWS's default for custom actions; a type's executor.jobTimeout overrides it.
  Custom: 24 * 60,
};

const CODEBUILD_TIMEOUT_MINUTES = 8 * 60;

/**
 * The Sluice configuration key (no AWS counterpart) by which an action run by the runners picks
 * its runner pool: its job goes to `sluice.jobs.<pool>.…`, and only a runner serving that pool
 * takes it. Commands rules of conditions and approvals have no pool choice.
 */
export const RUNNER_POOL_KEY = "RunnerPool";

/** The pool of an action that names none, and of every Commands rule. */
export const DEFAULT_RUNNER_POOL = "default";

/** Runner pool names: one subject token, short enough for durable and user names. */
export const RUNNER_POOL_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** Reserved: the pool token of custom action types' jobs (the bus's CUSTOM_JOBS_POOL). */
export const RESERVED_RUNNER_POOLS: readonly string[] = ["custom"];

/** Why `name` cannot be a runner pool, or undefined when it can. */
export function runnerPoolProblem(name: string): string | undefined {
  if (!RUNNER_POOL_PATTERN.test(name)) return `${JSON.stringify(name)} is not a runner pool name (1-32 letters, digits, '_' or '-')`;
  if (RESERVED_RUNNER_POOLS.includes(name)) return `${JSON.stringify(name)} is reserved (the jobs of custom action types) and cannot be a runner pool`;
  return undefined;
}

/** The runner pool an action's configuration picks: `RunnerPool`, else `default`. */
export function runnerPoolOf(configuration: Readonly<Record<string, string>>): string {
  return nonEmpty(configuration[RUNNER_POOL_KEY]) ?? DEFAULT_RUNNER_POOL;
}


const prop = (required: boolean, format: ConfigurationFormat, description: string): ConfigurationProperty => ({
  required,
  format,
  description,
});

const RUNNER_POOL = prop(false, "runner-pool", `runner pool whose runners take the job (default ${DEFAULT_RUNNER_POOL})`);
const REPOSITORY_URL = prop(true, "git-url", "git URL Sluice clones (https, ssh, git, file or user@host:path)");
const BRANCH_NAME = prop(false, "git-branch", `branch to follow (default ${DEFAULT_BRANCH})`);
const POLL = prop(false, "boolean", "accepted for AWS compatibility; the source poller watches every Git source");
const OUTPUT_FORMAT = prop(false, "code-zip", "artifact format; Sluice produces CODE_ZIP");
const KEPT = (what: string): ConfigurationProperty => prop(false, "text", `${what}; accepted and kept, not used by Sluice`);

const GIT_CONFIGURATION = { RepositoryUrl: REPOSITORY_URL, BranchName: BRANCH_NAME, PollForSourceChanges: POLL, DetectChanges: POLL, OutputArtifactFormat: OUTPUT_FORMAT };
const OBJECT_STORE_CONFIGURATION = {
  BucketName: prop(true, "bucket-name", "bucket the artifact is written to"),
  ObjectKey: prop(false, "text", "key prefix (Extract true) or object key (Extract false)"),
  Extract: prop(false, "boolean", "true (default): extract the artifact's files; false: store the zip as ObjectKey"),
};
const OBJECT_SOURCE_CONFIGURATION = {
  S3Bucket: prop(true, "source-bucket", "bucket holding the source object (the artifact service's SOURCE_BUCKETS must allow it)"),
  S3ObjectKey: prop(true, "source-object-key", "key of the source object, a zip (as AWS's S3 source)"),
  PollForSourceChanges: prop(false, "boolean", "true (default): the source poller watches the object and starts an execution when it changes"),
};
const BUILD_SPEC = prop(false, "text", "buildspec (version 0.2) inline as YAML or JSON, or the path of one in the primary input artifact");
const SOURCE = { input: { min: 0, max: 0 }, output: { min: 1, max: 1 } };
const COMMANDS_BOUNDS = { input: { min: 0, max: 5 }, output: { min: 0, max: 5 } };

interface Entry {
  category: ActionCategory;
  owner: ActionOwner;
  provider: string;
  builtIn: BuiltInProvider;
  bounds: { input: ArtifactBounds; output: ArtifactBounds };
  configuration: Record<string, ConfigurationProperty>;
  commands?: CommandsSource;
  timeout?: number;
}

const ENTRIES: readonly Entry[] = [
  { category: "Source", owner: "AWS", provider: "Git", builtIn: "Git", bounds: SOURCE, configuration: GIT_CONFIGURATION },
  {
    category: "Source",
    owner: "AWS",
    provider: "CodeCommit",
    builtIn: "Git",
    bounds: SOURCE,
    configuration: { ...GIT_CONFIGURATION, RepositoryName: KEPT("CodeCommit repository name") },
  },
  {
    category: "Source",
    owner: "AWS",
    provider: "CodeStarSourceConnection",
    builtIn: "Git",
    bounds: SOURCE,
    configuration: {
      ...GIT_CONFIGURATION,
      ConnectionArn: KEPT("CodeStar connection ARN"),
      FullRepositoryId: KEPT("owner/repository of the connection"),
    },
  },
  {
    // GitHub (version 1) names its branch `Branch`; BranchName wins when both are set.
    category: "Source",
    owner: "ThirdParty",
    provider: "GitHub",
    builtIn: "Git",
    bounds: SOURCE,
    configuration: {
      ...GIT_CONFIGURATION,
      Branch: prop(false, "git-branch", "branch to follow (GitHub v1 key; BranchName wins)"),
      Owner: KEPT("GitHub owner"),
      Repo: KEPT("GitHub repository"),
      OAuthToken: KEPT("GitHub token"),
    },
  },
  ...(["Build", "Test", "Deploy", "Compute"] as const).map(
    (category): Entry => ({
      category,
      owner: "AWS",
      provider: "Commands",
      builtIn: "Commands",
      bounds: COMMANDS_BOUNDS,
      configuration: {
        Commands: prop(false, "commands", "newline-separated shell commands (instead of the commands list)"),
        BuildSpec: BUILD_SPEC,
      },
      commands: "list-or-configuration",
    }),
  ),
  ...(["Build", "Test"] as const).map(
    (category): Entry => ({
      category,
      owner: "AWS",
      provider: "CodeBuild",
      builtIn: "Commands",
      bounds: COMMANDS_BOUNDS,
      configuration: {
        ProjectName: KEPT("CodeBuild project"),
        PrimarySource: KEPT("CodeBuild primary source"),
        BatchEnabled: KEPT("CodeBuild batch flag"),
        CombineArtifacts: KEPT("CodeBuild batch artifact flag"),
        BuildSpec: BUILD_SPEC,
      },
      commands: "list",
      timeout: CODEBUILD_TIMEOUT_MINUTES,
    }),
  ),
  {
    category: "Approval",
    owner: "AWS",
    provider: "Manual",
    builtIn: "Manual",
    bounds: { input: { min: 0, max: 0 }, output: { min: 0, max: 0 } },
    configuration: {
      NotificationArn: KEPT("SNS topic for the approval request"),
      ExternalEntityLink: prop(false, "text", "link shown to the approver"),
      CustomData: prop(false, "text", "message shown to the approver"),
      NotificationUrl: prop(false, "text", "HTTP(S) webhook POSTed when the approval opens (Sluice's stand-in for NotificationArn)"),
    },
  },
  { category: "Source", owner: "AWS", provider: "ObjectStore", builtIn: "ObjectStore", bounds: SOURCE, configuration: OBJECT_SOURCE_CONFIGURATION, timeout: 60 },
  { category: "Source", owner: "AWS", provider: "S3", builtIn: "ObjectStore", bounds: SOURCE, configuration: OBJECT_SOURCE_CONFIGURATION, timeout: 60 },
  {
    category: "Deploy",
    owner: "AWS",
    provider: "ObjectStore",
    builtIn: "ObjectStore",
    bounds: { input: { min: 1, max: 1 }, output: { min: 0, max: 0 } },
    configuration: OBJECT_STORE_CONFIGURATION,
  },
  {
    category: "Deploy",
    owner: "AWS",
    provider: "S3",
    builtIn: "ObjectStore",
    bounds: { input: { min: 1, max: 1 }, output: { min: 0, max: 0 } },
    configuration: {
      ...OBJECT_STORE_CONFIGURATION,
      KMSEncryptionKeyARN: KEPT("KMS key for the objects"),
      CannedACL: KEPT("S3 canned ACL"),
      CacheControl: KEPT("Cache-Control of the objects"),
    },
  },
  {
    // Sluice's Lambda invoke: the job is POSTed, signed, to an HTTP endpoint (see docs/architecture.md).
    category: "Invoke",
    owner: "AWS",
    provider: "Http",
    builtIn: "Http",
    bounds: { input: { min: 0, max: 5 }, output: { min: 0, max: 0 } },
    configuration: {
      Url: prop(true, "http-url", "http(s) endpoint the job is POSTed to (outbound targets follow EGRESS_ALLOW)"),
      UserParameters: prop(false, "text", "free text passed to the endpoint as actionConfiguration.configuration.UserParameters"),
    },
  },
];

function toSpec(entry: Entry): ProviderSpec {
  const route: ProviderRoute = entry.builtIn === "Manual" ? "approval" : "runner";
  // Every action the runners run may pick its pool.
  const configuration = route === "runner" ? { ...entry.configuration, [RUNNER_POOL_KEY]: RUNNER_POOL } : entry.configuration;
  const outputVariables: ProviderSpec["outputVariables"] =
    entry.builtIn === "Git"
      ? GIT_OUTPUT_VARIABLES
      : entry.builtIn === "ObjectStore" && entry.category === "Source"
        ? OBJECT_SOURCE_OUTPUT_VARIABLES
        : entry.builtIn === "Commands" || entry.builtIn === "Http"
          ? "declared"
          : [];
  return {
    key: providerKey(entry.category, entry.provider),
    category: entry.category,
    owner: entry.owner,
    provider: entry.provider,
    version: "1",
    builtIn: entry.builtIn,
    alias: entry.provider !== entry.builtIn,
    inputArtifacts: entry.bounds.input,
    outputArtifacts: entry.bounds.output,
    defaultTimeoutMinutes: entry.timeout ?? DEFAULT_TIMEOUT_MINUTES[entry.builtIn],
    configuration,
    requiredConfiguration: Object.keys(configuration).filter((k) => configuration[k]?.required === true),
    commands: entry.commands ?? "none",
    outputVariables,
    route,
  };
}

/** The table key of an action type: `Category/Provider`. */
export function providerKey(category: string, provider: string): string {
  return `${category}/${provider}`;
}

/**
 * Every action type Sluice accepts, keyed `Category/Provider` (e.g.
 * `Source/Git`, `Source/CodeCommit`, `Build/Commands`, `Deploy/S3`).
 */
export const BUILT_IN_PROVIDERS: Readonly<Record<string, ProviderSpec>> = Object.freeze(
  Object.fromEntries(ENTRIES.map((e) => [providerKey(e.category, e.provider), toSpec(e)])),
);

/** The shape of an action type id (a proto `ActionTypeId` or any look-alike). */
export interface ActionTypeIdLike {
  readonly category: string;
  readonly owner: string;
  readonly provider: string;
  readonly version: string;
}

/**
 * The provider that runs an action type, or undefined when Sluice does not run
 * it (category, provider, owner and version must all match the table).
 * Used by the orchestrator to route jobs and by runners/pollers to pick a
 * provider; `validatePipeline` reports why an action type does not resolve.
 */
export function resolveProvider(actionTypeId: ActionTypeIdLike | undefined): ProviderSpec | undefined {
  if (actionTypeId === undefined) return undefined;
  const spec = Object.hasOwn(BUILT_IN_PROVIDERS, providerKey(actionTypeId.category, actionTypeId.provider))
    ? BUILT_IN_PROVIDERS[providerKey(actionTypeId.category, actionTypeId.provider)]
    : undefined;
  if (spec === undefined || spec.owner !== actionTypeId.owner || spec.version !== actionTypeId.version) return undefined;
  return spec;
}

/** The provider names Sluice accepts in a category (sorted), for error messages and docs. */
export function supportedProviders(category: string): string[] {
  return Object.values(BUILT_IN_PROVIDERS)
    .filter((p) => p.category === category)
    .map((p) => p.provider)
    .sort();
}

/**
 * Job timeout of an action in minutes: its own `timeoutInMinutes` (approvals),
 * else its provider's default, else 60 for an action type Sluice does not know.
 */
export function actionTimeoutMinutes(action: ActionDeclaration): number {
  return action.timeoutInMinutes ?? resolveProvider(action.actionTypeId)?.defaultTimeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES.Commands;
}

/** Where a Git-family source fetches from. */
export interface GitSourceSettings {
  readonly repositoryUrl: string;
  readonly branch: string;
}

/**
 * Repository and branch of a Git-family source action's configuration:
 * `RepositoryUrl`, and `BranchName`, else GitHub v1's `Branch`, else `main`.
 * Runners and the source poller use this so all of them follow the same branch.
 */
export function gitSourceOf(configuration: Readonly<Record<string, string>>): GitSourceSettings {
  const branch = nonEmpty(configuration["BranchName"]) ?? nonEmpty(configuration["Branch"]) ?? DEFAULT_BRANCH;
  return { repositoryUrl: configuration["RepositoryUrl"] ?? "", branch };
}

/** Where an ObjectStore deploy writes. */
export interface ObjectStoreTarget {
  readonly bucket: string;
  /** Key prefix (extract) or the object key (no extract); "" = bucket root. */
  readonly objectKey: string;
  readonly extract: boolean;
}

/** Target of an ObjectStore/S3 deploy action (resolved configuration); Extract defaults to true. */
export function objectStoreTargetOf(configuration: Readonly<Record<string, string>>): ObjectStoreTarget {
  return {
    bucket: configuration["BucketName"] ?? "",
    objectKey: configuration["ObjectKey"] ?? "",
    extract: configuration["Extract"] !== "false",
  };
}

/** The object an ObjectStore source follows. */
export interface ObjectSourceSettings {
  readonly bucket: string;
  readonly objectKey: string;
  /** False when `PollForSourceChanges` is "false": the poller leaves the source alone. */
  readonly poll: boolean;
}

/** Bucket, key and polling of an ObjectStore/S3 source action's configuration (PollForSourceChanges defaults to true, as AWS). */
export function objectSourceOf(configuration: Readonly<Record<string, string>>): ObjectSourceSettings {
  return {
    bucket: configuration["S3Bucket"]?.trim() ?? "",
    objectKey: configuration["S3ObjectKey"] ?? "",
    poll: configuration["PollForSourceChanges"] !== "false",
  };
}

/** True for the action types that run as the ObjectStore source (`Source/ObjectStore`, AWS's `Source/S3`). */
export function isObjectSource(spec: Pick<ProviderSpec, "category" | "builtIn"> | undefined): boolean {
  return spec?.category === "Source" && spec.builtIn === "ObjectStore";
}

/**
 * The shell commands of a Commands action: the `commands` list, else the
 * non-empty lines of `configuration.Commands`.
 */
export function commandsOf(action: Pick<ActionDeclaration, "commands" | "configuration">): string[] {
  if (action.commands.length > 0) return [...action.commands];
  return splitCommands(action.configuration["Commands"] ?? "");
}

/** Non-empty lines of a `configuration.Commands` value. */
export function splitCommands(value: string): string[] {
  return value
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
