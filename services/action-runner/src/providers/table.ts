import { createEgressPolicy } from "@sluice/service-kit";
import { commandsProvider } from "./commands.js";
import { gitSourceProvider } from "./git-source.js";
import { createHttpInvokeProvider } from "./http-invoke.js";
import type { HttpInvokeOptions } from "./http-invoke.js";
import { createObjectStoreDeployProvider } from "./object-store-deploy.js";
import { objectStoreSourceProvider } from "./object-store-source.js";
import type { DeployGranter } from "./object-store-deploy.js";
import type { Provider } from "./provider.js";

/**
 * The built-in providers this runner serves, keyed `"<Category>/<Provider>"` as they appear in
 * the domain's provider table resolves a job's `actionTypeId` (AWS names such as CodeCommit,
 * CodeBuild or S3 map to these). Approval/Manual is not here: the approval service consumes those jobs.
 * `Rule/Commands` runs the Commands rules of stage conditions exactly like a Commands action:
 * the rule passes when its commands succeed.
 */
export const SERVED_ACTIONS: readonly ServedAction[] = [
  { category: "Source", provider: "Git", served: "Git" },
  { category: "Source", provider: "ObjectStore", served: "ObjectStore" },
  { category: "Build", provider: "Commands", served: "Commands" },
  { category: "Test", provider: "Commands", served: "Commands" },
  { category: "Deploy", provider: "Commands", served: "Commands" },
  { category: "Compute", provider: "Commands", served: "Commands" },
  { category: "Deploy", provider: "ObjectStore", served: "ObjectStore" },
  { category: "Rule", provider: "Commands", served: "Rule" },
  { category: "Invoke", provider: "Http", served: "Http" },
];

/** What RUNNER_PROVIDERS names: a built-in provider, or `Rule` for the Commands rules of conditions. */
export const RUNNER_PROVIDERS = ["Git", "Commands", "ObjectStore", "Rule", "Http"] as const;
export type RunnerProvider = (typeof RUNNER_PROVIDERS)[number];

/** One job kind a runner may serve, and the RUNNER_PROVIDERS name that turns it on. */
export interface ServedAction {
  readonly category: string;
  readonly provider: string;
  readonly served: RunnerProvider;
}

/** The job kinds of the providers a runner serves. */
export function servedActions(providers: readonly RunnerProvider[]): ServedAction[] {
  return SERVED_ACTIONS.filter((a) => providers.includes(a.served));
}

/**
 * Builds the provider table. `deployGrants` issues ObjectStore deploys' PUT grants (absent:
 * deploys fail with ConfigurationError); `httpInvoke` signs and sends Http invokes (absent: no
 * signing secret, so Http jobs fail with ConfigurationError).
 */
export function createProviderTable(opts: {
  readonly deployGrants?: DeployGranter | undefined;
  readonly httpInvoke?: HttpInvokeOptions | undefined;
}): Map<string, Provider> {
  const byProvider: Readonly<Record<string, Provider>> = {
    Git: gitSourceProvider,
    Commands: commandsProvider,
    ObjectStore: createObjectStoreDeployProvider(opts.deployGrants),
    Http: createHttpInvokeProvider(opts.httpInvoke ?? { secret: undefined, egress: createEgressPolicy() }),
  };
  // Where one built-in name runs differently per category (ObjectStore reads as a source, writes as a deploy).
  const byAction: Readonly<Record<string, Provider>> = { "Source/ObjectStore": objectStoreSourceProvider };
  const table = new Map<string, Provider>();
  for (const { category, provider } of SERVED_ACTIONS) {
    const impl = byAction[`${category}/${provider}`] ?? byProvider[provider];
    if (impl === undefined) throw new Error(`no implementation of served provider ${provider}`);
    table.set(`${category}/${provider}`, impl);
  }
  return table;
}
