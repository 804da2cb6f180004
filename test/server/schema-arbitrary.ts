/**
 * fast-check arbitraries generated from a route's own zod schemas (through their JSON Schema), so
 * the fuzzer follows the API as it changes. Every node is sometimes valid, sometimes hostile
 * (wrong type, boundary numbers, injection strings, prototype keys), so requests reach every
 * stage of validation and, now and then, the handler itself.
 */
import fc from "fast-check";
import { z } from "zod";

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
};

/** Strings the issue named, and their friends. */
export const HOSTILE_STRINGS = [
  "_x",
  "\u0000",
  "%00",
  "__proto__",
  "constructor",
  "prototype",
  "a".repeat(5000),
  "bad id!",
  "../../etc/passwd",
  "\u202e",
  "' or 1=1 --",
  "\ud800",
  "",
  " ",
  "1e400",
  "-1",
  "NaN",
];

const hostileValue = fc.oneof(
  fc.constantFrom<unknown>(...HOSTILE_STRINGS, null, true, -1, 0, 2 ** 53, 1.5, -0, [], {}),
  fc.constantFrom<unknown>(
    { __proto__: { polluted: true } },
    JSON.parse('{"__proto__": {"polluted": true}}'),
  ),
  fc.anything({ maxDepth: 2 }),
);

function validOf(s: JsonSchema): fc.Arbitrary<unknown> {
  if (s.anyOf) return fc.oneof(...s.anyOf.map(validOf));
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  switch (s.type) {
    case "string":
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
      if (s.format === "uri") return fc.webUrl();
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 40) });
    case "integer":
      return fc.oneof(
        fc.integer({
          min: Math.max(s.minimum ?? -1e6, -(2 ** 31)),
          max: Math.min(s.maximum ?? 1e6, 2 ** 31),
        }),
        fc.constantFrom(s.minimum ?? 0, s.maximum ?? 0),
      );
    case "number":
      return fc.double({ noNaN: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      return fc.array(s.items ? arbitraryOf(s.items) : fc.anything(), {
        minLength: s.minItems ?? 0,
        maxLength: Math.min(s.maxItems ?? 4, 4),
      });
    case "object": {
      const props = s.properties ?? {};
      const record = fc.record(
        Object.fromEntries(Object.entries(props).map(([k, v]) => [k, arbitraryOf(v)])),
        { requiredKeys: (s.required ?? []).filter((k) => k in props) },
      );
      // Sometimes an extra member: strict schemas must refuse it.
      return fc.oneof(
        { weight: 4, arbitrary: record },
        {
          weight: 1,
          arbitrary: fc.tuple(record, fc.string(), hostileValue).map(([r, k, v]) => ({ ...r, [k]: v })),
        },
      );
    }
    default:
      return fc.anything({ maxDepth: 2 });
  }
}

/** Mostly valid values for the schema, sometimes hostile ones, at every depth. */
export function arbitraryOf(s: JsonSchema): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 5, arbitrary: validOf(s) }, { weight: 1, arbitrary: hostileValue });
}

/** The arbitrary for a zod schema, as its input (what a client sends) is described. */
export function arbitraryFor(schema: z.ZodType): fc.Arbitrary<unknown> {
  return arbitraryOf(z.toJSONSchema(schema, { unrepresentable: "any", io: "input" }) as JsonSchema);
}
