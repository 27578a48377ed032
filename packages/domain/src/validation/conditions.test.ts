// Validation of stage conditions and rules against AWS's shapes, limits and results per kind.

import { describe, expect, it } from "vitest";
import { toPipelineSpec } from "../execution/spec.js";
import { basePipelineJson, edited, parse, stageOf } from "./test-fixtures.js";
import type { PipelineJson, RuleJson } from "./test-fixtures.js";
import { validatePipeline } from "./validate.js";

const variableCheck = (name: string, variable = "#{SourceVariables.BranchName}", operator = "EQ", value = "main"): RuleJson => ({
  name,
  ruleTypeId: { category: "Rule", owner: "AWS", provider: "VariableCheck", version: "1" },
  configuration: { Variable: variable, Operator: operator, Value: value },
});
const commandsRule = (name: string, over: RuleJson = {}): RuleJson => ({
  name,
  ruleTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" },
  commands: ["./smoke.sh"],
  ...over,
});

/** Fields of the violations of the base pipeline after `edit`. */
function fields(edit: (json: PipelineJson) => unknown): string[] {
  return validatePipeline(edited(edit)).map((v) => v.field);
}

/** The violations of the base pipeline after `edit`, as [field, message]. */
function violations(edit: (json: PipelineJson) => unknown): [string, string][] {
  return validatePipeline(edited(edit)).map((v) => [v.field, v.message]);
}

/** The base pipeline with every kind of condition Sluice runs. */
function withConditions(json: PipelineJson): void {
  stageOf(json, 1).beforeEntry = { conditions: [{ result: "SKIP", rules: [variableCheck("OnMain")] }] };
  stageOf(json, 3).beforeEntry = { conditions: [{ rules: [variableCheck("ReleaseBranch", "#{SourceVariables.BranchName}", "MATCHES", "release/[0-9]+")] }] };
  stageOf(json, 3).onSuccess = { conditions: [{ result: "ROLLBACK", rules: [commandsRule("Smoke", { inputArtifacts: [{ name: "BuildOut" }], timeoutInMinutes: 30 })] }] };
  stageOf(json, 3).onFailure = { result: "ROLLBACK" };
  stageOf(json, 2).onFailure = { result: "RETRY", retryConfiguration: { retryMode: "FAILED_ACTIONS" } };
}

describe("valid conditions", () => {
  it("accepts beforeEntry FAIL/SKIP, onSuccess ROLLBACK, onFailure ROLLBACK and RETRY, on any pipelineType", () => {
    expect(validatePipeline(edited(withConditions))).toEqual([]);
    expect(validatePipeline(edited((j) => ((j.pipelineType = "V1"), withConditions(j))))).toEqual([]);
  });

  it("accepts an onFailure condition that decides on a rollback, with rules reading this stage's variables", () => {
    expect(
      fields((j) => {
        stageOf(j, 1).onFailure = { conditions: [{ result: "ROLLBACK", rules: [variableCheck("Versioned", "#{BuildVariables.VERSION}", "NE", "0")] }] };
      }),
    ).toEqual([]);
  });

  it("becomes the state machine's spec with default results filled in", () => {
    const spec = toPipelineSpec(edited(withConditions), () => "Commands");
    expect(spec.stages[1]?.beforeEntry).toEqual({
      conditions: [{ result: "SKIP", rules: [{ name: "OnMain", ruleTypeId: { category: "Rule", owner: "AWS", provider: "VariableCheck", version: "1" }, configuration: { Variable: "#{SourceVariables.BranchName}", Operator: "EQ", Value: "main" }, commands: [], inputArtifacts: [] }] }],
    });
    expect(spec.stages[3]?.beforeEntry?.conditions[0]?.result).toBe("FAIL");
    expect(spec.stages[3]?.onSuccess?.conditions[0]?.rules[0]).toMatchObject({ inputArtifacts: ["BuildOut"], timeoutInMinutes: 30, commands: ["./smoke.sh"] });
    expect(spec.stages[2]?.onFailure).toEqual({ result: "RETRY", retryConfiguration: { retryMode: "FAILED_ACTIONS" }, conditions: [] });
  });

  it("parses AWS's JSON field names (beforeEntry, ruleTypeId, retryConfiguration.retryMode)", () => {
    const json = basePipelineJson();
    withConditions(json);
    const decl = parse(JSON.stringify(json));
    expect(decl.stages[2]?.onFailure?.retryConfiguration?.retryMode).toBe("FAILED_ACTIONS");
    expect(decl.stages[3]?.onSuccess?.conditions[0]?.rules[0]?.ruleTypeId?.provider).toBe("Commands");
  });
});

describe("condition shapes", () => {
  it("beforeEntry and onSuccess hold exactly 1 condition; onFailure at most 1", () => {
    expect(
      violations((j) => {
        stageOf(j, 1).beforeEntry = { conditions: [] };
        stageOf(j, 1).onSuccess = { conditions: [{ rules: [variableCheck("A")] }, { rules: [variableCheck("B")] }] };
        stageOf(j, 1).onFailure = { result: "ROLLBACK", conditions: [{ rules: [variableCheck("C")] }, { rules: [variableCheck("D")] }] };
      }),
    ).toEqual([
      ["pipeline.stages[1].beforeEntry.conditions", "must hold exactly 1 condition, got 0"],
      ["pipeline.stages[1].onSuccess.conditions", "must hold exactly 1 condition, got 2"],
      ["pipeline.stages[1].onFailure.conditions", "holds at most 1 condition, got 2"],
    ]);
  });

  it("a condition holds 1 to 5 rules", () => {
    const six = ["a", "b", "c", "d", "e", "f"].map((n) => variableCheck(n));
    expect(
      violations((j) => {
        stageOf(j, 1).beforeEntry = { conditions: [{ rules: [] }] };
        stageOf(j, 3).beforeEntry = { conditions: [{ rules: six }] };
      }),
    ).toEqual([
      ["pipeline.stages[1].beforeEntry.conditions[0].rules", "a condition holds 1 to 5 rules, got 0"],
      ["pipeline.stages[3].beforeEntry.conditions[0].rules", "a condition holds 1 to 5 rules, got 6"],
    ]);
  });

  it("rule names are unique per pipeline", () => {
    expect(
      violations((j) => {
        stageOf(j, 1).beforeEntry = { conditions: [{ rules: [variableCheck("Gate")] }] };
        stageOf(j, 3).onSuccess = { conditions: [{ rules: [variableCheck("Gate")] }] };
      }),
    ).toEqual([
      [
        "pipeline.stages[3].onSuccess.conditions[0].rules[0].name",
        '"Gate" is already the name of the rule at pipeline.stages[1].beforeEntry.conditions[0].rules[0]; rule names are unique per pipeline',
      ],
    ]);
  });
});

describe("condition results", () => {
  it("each kind takes its own results", () => {
    expect(
      violations((j) => {
        stageOf(j, 1).beforeEntry = { conditions: [{ result: "ROLLBACK", rules: [variableCheck("A")] }] };
        stageOf(j, 1).onSuccess = { conditions: [{ result: "SKIP", rules: [variableCheck("B")] }] };
        stageOf(j, 2).onFailure = { conditions: [{ result: "FAIL", rules: [variableCheck("C")] }] };
        stageOf(j, 3).onFailure = { result: "SKIP" };
      }),
    ).toEqual([
      ["pipeline.stages[1].beforeEntry.conditions[0].result", 'a beforeEntry condition takes FAIL or SKIP, got "ROLLBACK"'],
      ["pipeline.stages[1].onSuccess.conditions[0].result", 'a onSuccess condition takes FAIL or ROLLBACK, got "SKIP"'],
      ["pipeline.stages[2].onFailure.conditions[0].result", 'a onFailure condition takes ROLLBACK, got "FAIL"'],
      ["pipeline.stages[3].onFailure.result", 'onFailure takes ROLLBACK or RETRY, got "SKIP"'],
    ]);
  });

  it("SKIP only when every rule is a VariableCheck rule", () => {
    expect(
      violations((j) => {
        stageOf(j, 1).beforeEntry = { conditions: [{ result: "SKIP", rules: [variableCheck("A"), commandsRule("B")] }] };
      }),
    ).toEqual([["pipeline.stages[1].beforeEntry.conditions[0].result", "SKIP needs every rule of the condition to be a VariableCheck rule"]]);
  });

  it("automatic retry: RETRY needs a retryConfiguration with a retry mode and cannot be combined with conditions", () => {
    expect(
      violations((j) => {
        stageOf(j, 1).onFailure = { result: "RETRY" };
        stageOf(j, 2).onFailure = { result: "RETRY", retryConfiguration: { retryMode: "SOME" }, conditions: [{ rules: [variableCheck("A")] }] };
        stageOf(j, 3).onFailure = { result: "ROLLBACK", retryConfiguration: { retryMode: "ALL_ACTIONS" } };
      }),
    ).toEqual([
      ["pipeline.stages[1].onFailure.retryConfiguration", "is required with result RETRY: give retryMode FAILED_ACTIONS or ALL_ACTIONS"],
      ["pipeline.stages[2].onFailure.conditions", "automatic retry (result RETRY) cannot be combined with onFailure conditions"],
      ["pipeline.stages[2].onFailure.retryConfiguration.retryMode", 'must be FAILED_ACTIONS or ALL_ACTIONS, got "SOME"'],
      ["pipeline.stages[3].onFailure.retryConfiguration", "only applies with result RETRY"],
    ]);
    expect(violations((j) => (stageOf(j, 1).onFailure = {}))).toEqual([["pipeline.stages[1].onFailure", "give a result (ROLLBACK or RETRY) or a condition"]]);
  });

  it("ROLLBACK is refused on the first stage and in PARALLEL pipelines", () => {
    expect(
      violations((j) => {
        stageOf(j, 0).onFailure = { result: "ROLLBACK" };
      }),
    ).toEqual([["pipeline.stages[0].onFailure.result", "the first stage cannot be rolled back: it holds the source actions"]]);
    expect(
      violations((j) => {
        j.executionMode = "PARALLEL";
        j.pipelineType = "V2";
        stageOf(j, 3).onSuccess = { conditions: [{ result: "ROLLBACK", rules: [commandsRule("Smoke")] }] };
      }),
    ).toEqual([["pipeline.stages[3].onSuccess.conditions[0].result", "PARALLEL pipelines cannot roll back (use SUPERSEDED or QUEUED)"]]);
  });
});

describe("rule types", () => {
  it("other AWS rule providers are named as unsupported, listing the supported ones", () => {
    expect(
      violations((j) => {
        stageOf(j, 3).onSuccess = {
          conditions: [
            {
              rules: [
                { name: "Alarm", ruleTypeId: { category: "Rule", owner: "AWS", provider: "CloudWatchAlarm", version: "1" }, configuration: { AlarmName: "x" } },
                { name: "Odd", ruleTypeId: { category: "Rule", owner: "AWS", provider: "Nope", version: "1" } },
              ],
            },
          ],
        };
      }),
    ).toEqual([
      ["pipeline.stages[3].onSuccess.conditions[0].rules[0].ruleTypeId.provider", '"CloudWatchAlarm" rules are not supported by Sluice; supported rule providers: Commands, VariableCheck'],
      ["pipeline.stages[3].onSuccess.conditions[0].rules[1].ruleTypeId.provider", '"Nope" is not a rule provider; supported rule providers: Commands, VariableCheck'],
    ]);
  });

  it("category Rule, owner AWS and version 1 are required", () => {
    expect(
      fields((j) => {
        stageOf(j, 3).onSuccess = { conditions: [{ rules: [{ ...variableCheck("A"), ruleTypeId: { category: "Build", owner: "Custom", provider: "VariableCheck", version: "2" } }, { name: "B" }] }] };
      }),
    ).toEqual([
      "pipeline.stages[3].onSuccess.conditions[0].rules[0].ruleTypeId.category",
      "pipeline.stages[3].onSuccess.conditions[0].rules[0].ruleTypeId.owner",
      "pipeline.stages[3].onSuccess.conditions[0].rules[0].ruleTypeId.version",
      "pipeline.stages[3].onSuccess.conditions[0].rules[1].ruleTypeId",
    ]);
  });
});

describe("VariableCheck rules", () => {
  const at = "pipeline.stages[3].beforeEntry.conditions[0].rules[0]";
  const gate = (rule: RuleJson) => (j: PipelineJson) => {
    stageOf(j, 3).beforeEntry = { conditions: [{ rules: [rule] }] };
  };

  it("takes exactly Variable (a reference), Value and Operator (EQ, NE, CONTAINS, MATCHES)", () => {
    expect(violations(gate({ ...variableCheck("A"), configuration: { Variable: "BranchName", Operator: "GT", Extra: "x" } }))).toEqual([
      [`${at}.configuration.Extra`, 'VariableCheck has no configuration "Extra"; it takes Variable, Value, Operator'],
      [`${at}.configuration.Value`, "is required by VariableCheck"],
      [`${at}.configuration.Variable`, 'must reference the variable to check, e.g. "#{SourceVariables.BranchName}", got "BranchName"'],
      [`${at}.configuration.Operator`, 'must be one of EQ, NE, CONTAINS, MATCHES, got "GT"'],
    ]);
  });

  it("a MATCHES pattern must be one Sluice matches in linear time", () => {
    expect(violations(gate(variableCheck("A", "#{SourceVariables.BranchName}", "MATCHES", "(?=main)main")))).toEqual([
      [`${at}.configuration.Value`, "is not a pattern Sluice can match: lookahead and lookbehind are not supported at position 1"],
    ]);
  });

  it("variables must come from actions that run before the rule: earlier stages for beforeEntry", () => {
    expect(violations((j) => (stageOf(j, 1).beforeEntry = { conditions: [{ rules: [variableCheck("A", "#{BuildVariables.VERSION}")] }] }))).toEqual([
      ["pipeline.stages[1].beforeEntry.conditions[0].rules[0].configuration.Variable", '"#{BuildVariables.VERSION}": action "Compile" in stage "Build" does not run before this rule'],
    ]);
    expect(fields((j) => (stageOf(j, 1).onSuccess = { conditions: [{ rules: [variableCheck("A", "#{BuildVariables.VERSION}")] }] }))).toEqual([]);
  });

  it("runs no commands", () => {
    expect(violations(gate({ ...variableCheck("A"), commands: ["true"] }))).toEqual([[`${at}.commands`, "only Commands rules run commands; VariableCheck does not"]]);
  });
});

describe("Commands rules", () => {
  const at = "pipeline.stages[3].onSuccess.conditions[0].rules[0]";
  const smoke = (rule: RuleJson) => (j: PipelineJson) => {
    stageOf(j, 3).onSuccess = { conditions: [{ rules: [rule] }] };
  };

  it("need commands and take no configuration", () => {
    expect(violations(smoke({ ...commandsRule("S"), commands: [], configuration: { ProjectName: "p" } }))).toEqual([
      [`${at}.configuration.ProjectName`, "Commands rules take no configuration: list the shell commands in commands"],
      [`${at}.commands`, "is required: list the shell commands whose success passes the rule"],
    ]);
  });

  it("inputs must be produced before the rule; timeoutInMinutes is 5-86400", () => {
    expect(
      violations((j) => {
        stageOf(j, 1).beforeEntry = { conditions: [{ rules: [commandsRule("S", { inputArtifacts: [{ name: "BuildOut" }], timeoutInMinutes: 4 })] }] };
      }),
    ).toEqual([
      ["pipeline.stages[1].beforeEntry.conditions[0].rules[0].inputArtifacts[0].name", '"BuildOut" is not produced by an action that runs before this rule'],
      ["pipeline.stages[1].beforeEntry.conditions[0].rules[0].timeoutInMinutes", "must be 5-86400 minutes, got 4"],
    ]);
  });
});
