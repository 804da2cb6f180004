import { describe, expect, it } from "vitest";
import {
  baselineFromSamples,
  countOutput,
  type MonitoringPolicy,
  monitoringProblem,
} from "../../src/core/monitoring.js";
import { observeOutputs, releaseAggregates } from "../../worker/output-monitor.js";

const f32 = (values: number[], dims: number[]) => ({ type: "float32", data: new Float32Array(values), dims });
const outputs = [
  { name: "probabilities", type: "float32" as const, shape: ["batch", 3] },
  { name: "text", type: "string" as const, shape: [1] },
];

describe("output aggregates", () => {
  it("counts the arg-max class of every row (ties: the lower index)", () => {
    const into = [0, 0, 0];
    const rows = countOutput(
      { output: "p", kind: "classes", classes: 3 },
      f32([0.1, 0.8, 0.1, 0.5, 0.5, 0, 0, 0.2, 0.9], [3, 3]),
      into,
    );
    expect(rows).toBe(3);
    expect(into).toEqual([1, 1, 1]);
  });

  it("buckets a per-row statistic: bucket i holds edges[i-1] <= value < edges[i]; NaN is skipped", () => {
    const into = [0, 0, 0];
    const spec = { output: "s", kind: "buckets" as const, statistic: "mean" as const, edges: [0, 1] };
    countOutput(spec, f32([-1, -1, 0, 0, 1, 3, Number.NaN, 1], [4, 2]), into);
    expect(into).toEqual([1, 1, 1]);
    const max = [0, 0, 0];
    countOutput({ ...spec, statistic: "max" }, f32([-1, 0.5, 2, 0], [2, 2]), max);
    expect(max).toEqual([0, 1, 1]);
  });

  it("refuses a policy that does not fit the model's outputs", () => {
    const ok: MonitoringPolicy = {
      outputs: [{ output: "probabilities", kind: "classes", classes: 3 }],
      minCount: 5,
    };
    expect(monitoringProblem(ok, outputs)).toBeUndefined();
    const bad = (o: object) => monitoringProblem({ outputs: [o as never], minCount: 5 }, outputs)?.[0];
    expect(bad({ output: "nope", kind: "classes", classes: 3 })).toBe("outputs.0.output");
    expect(bad({ output: "text", kind: "classes", classes: 3 })).toBe("outputs.0.output");
    expect(bad({ output: "probabilities", kind: "classes", classes: 4 })).toBe("outputs.0.classes");
    expect(bad({ output: "probabilities", kind: "classes", classes: 3, baseline: [1, 2] })).toBe(
      "outputs.0.baseline",
    );
    expect(bad({ output: "probabilities", kind: "buckets", statistic: "max", edges: [1, 1] })).toBe(
      "outputs.0.edges",
    );
  });

  it("a baseline from a sample set is what the runtime would report", () => {
    const policy: MonitoringPolicy = { outputs: [{ output: "p", kind: "classes", classes: 3 }], minCount: 1 };
    const runs = [{ p: f32([1, 0, 0, 0, 1, 0], [2, 3]) }, { p: f32([0, 0, 1], [1, 3]) }];
    expect(baselineFromSamples(policy, runs)).toEqual([[1, 1, 1]]);
  });
});

describe("pending aggregates on the device", () => {
  const policy: MonitoringPolicy = {
    outputs: [
      { output: "p", kind: "classes", classes: 2 },
      { output: "q", kind: "classes", classes: 2 },
    ],
    minCount: 3,
  };
  it("releases an output only once it has minCount rows; the rest stays pending", () => {
    let pending = observeOutputs(undefined, policy, { p: f32([1, 0, 1, 0], [2, 2]), q: f32([0, 1], [1, 2]) });
    expect(releaseAggregates(pending, policy).agg).toBeUndefined();
    pending = observeOutputs(pending, policy, { p: f32([0, 1], [1, 2]) });
    const { agg, rest } = releaseAggregates(pending, policy);
    expect(agg).toEqual([[2, 1], []]);
    expect(rest?.counts[1]).toEqual([0, 1]);
    expect(rest?.counts[0]).toBeUndefined();
  });
  it("never mixes counts of another policy", () => {
    const pending = observeOutputs(undefined, policy, { p: f32([1, 0, 1, 0, 1, 0], [3, 2]) });
    const other: MonitoringPolicy = { outputs: [{ output: "p", kind: "classes", classes: 3 }], minCount: 1 };
    expect(releaseAggregates(pending, other).agg).toBeUndefined();
    expect(observeOutputs(pending, other, { p: f32([0, 0, 1], [1, 3]) }).counts).toEqual([[0, 0, 1]]);
  });
});
