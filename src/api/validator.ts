// The API's request validation: TypeBox's compiler (@fastify/type-provider-typebox), except that a
// query string, path or header value is taken for an integer only when it is written as one, and
// that unknown fields are found here, each object's as one issue.
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

/** An integer as a query string writes it: decimal digits, a sign at most. */
const DECIMAL_INTEGER = /^[+-]?[0-9]+$/;

/** The properties of an object schema that hold an integer (`?timeoutMs=`). */
function integerProperties(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  return Object.keys(properties).filter((name) => properties[name]!.type === 'integer');
}

/** Issues a refusal names at most, as TypeBox keeps (its maxErrors): past them the value is
 * refused on these alone, unwalked further and unchecked by TypeBox. */
const MAX_ISSUES = 8;

interface ObjectSchema {
  type?: unknown;
  properties?: Record<string, unknown>;
  patternProperties?: unknown;
  additionalProperties?: unknown;
  items?: unknown;
}

interface UnknownFields {
  /** The value with every unknown field left out, for TypeBox to check the rest. */
  known: unknown;
  issues: { instancePath: string; schemaPath: string; keyword: 'additionalProperties'; params: { additionalProperties: string[] }; message: string }[];
}

/** The fields of `value` that its schema's objects do not have (`additionalProperties: false`),
 * in and under it (an object's properties, an array's items), one issue per object naming them
 * all. TypeBox reports each unknown field as an issue of its own before the object's one, and
 * keeps 8 issues (its maxErrors): from 8 unknown fields on, the one naming them was dropped; and
 * finding them cost it ~4 µs a field (1.5 s for a 4 MiB body of 391,000 short keys, the event loop
 * blocked throughout), where a set lookup costs ~0.05. */
function unknownFields(schema: unknown, value: unknown, instancePath = '', schemaPath = '#', found: UnknownFields['issues'] = []): UnknownFields {
  const shape = schema as ObjectSchema | undefined;
  if (Array.isArray(value) && shape?.type === 'array' && shape.items !== undefined && typeof shape.items === 'object') {
    let changed = false;
    const known: unknown[] = [];
    for (const [index, item] of value.entries()) {
      // Enough said (the caller answers with these alone): an array of 500,000 items with an
      // unknown field each is not walked to its end, nor answered with an issue for each.
      if (found.length >= MAX_ISSUES) return { known: value, issues: found };
      const inner = unknownFields(shape.items, item, `${instancePath}/${index}`, `${schemaPath}/items`, found).known;
      changed ||= inner !== item;
      known.push(inner);
    }
    return { known: changed ? known : value, issues: found };
  }
  if (shape?.type !== 'object' || shape.properties === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return { known: value, issues: found };
  const properties = shape.properties;
  const fields = value as Record<string, unknown>;
  // The object's issue before those of its fields.
  const at = found.length;
  // Only the schema's own properties are copied and looked into: an object of 400,000 unknown
  // keys costs one pass over its keys (Object.entries' pairs, 400,000 arrays, cost 3 times that).
  const unknown = shape.additionalProperties === false && shape.patternProperties === undefined ? Object.keys(fields).filter((name) => !Object.hasOwn(properties, name)) : [];
  let changed = unknown.length > 0;
  const declared: Record<string, unknown> = {};
  for (const name of Object.keys(properties)) {
    if (!Object.hasOwn(fields, name)) continue;
    const field = fields[name];
    const inner = unknownFields(properties[name], field, `${instancePath}/${escapePointer(name)}`, `${schemaPath}/properties/${escapePointer(name)}`, found).known;
    changed ||= inner !== field;
    declared[name] = inner;
  }
  if (unknown.length > 0) {
    found.splice(at, 0, { instancePath, schemaPath: `${schemaPath}/additionalProperties`, keyword: 'additionalProperties', params: { additionalProperties: unknown }, message: 'must not have additional properties' });
  }
  if (!changed) return { known: value, issues: found };
  // An object that takes other fields keeps them, its declared ones as checked here.
  return { known: unknown.length > 0 ? declared : { ...fields, ...declared }, issues: found };
}

/** A JSON Pointer's escaping of one name (RFC 6901), as TypeBox writes instance paths. */
const escapePointer = (name: string): string => name.replace(/~/g, '~0').replace(/\//g, '~1');

/** A check with unknown fields found first (unknownFields), the rest by `check` on the value
 * without them, its issues after theirs. */
function findingUnknownFields(schema: unknown, check: Check): Check {
  return (value: unknown) => {
    const { known, issues } = unknownFields(schema, value);
    if (issues.length === 0) return check(value);
    if (issues.length >= MAX_ISSUES) return { error: issues };
    const rest = check(known) as { error?: FastifySchemaValidationError[] };
    return { error: [...issues, ...(Array.isArray(rest.error) ? rest.error : [])] };
  };
}

type Check = ReturnType<typeof TypeBoxValidatorCompiler>;

/** TypeBox converts a query's text to the schema's types before checking it (Value.Convert), and
 * reads "1.5" as the integer 1, "0x10" as 16 and "1e3" as 1000: a `?timeoutMs=1.5` was taken as 1,
 * where fastify's own validation (ajv's coerceTypes) refuses a value that is not a whole number.
 * Such a value is refused here as the schema refuses any other (400 invalid_request, naming it);
 * a body is JSON, its numbers typed already, and checked as it is. */
function wholeIntegers(schema: unknown, check: Check): Check {
  const integers = integerProperties(schema);
  if (integers.length === 0) return check;
  return (value: unknown) => {
    const given = (value ?? {}) as Record<string, unknown>;
    const notWhole = integers.filter((name) => typeof given[name] === 'string' && !DECIMAL_INTEGER.test(given[name]));
    if (notWhole.length === 0) return check(value);
    return {
      error: notWhole.map((name) => ({
        instancePath: `/${name}`,
        schemaPath: `#/properties/${name}/type`,
        keyword: 'type',
        params: { type: 'integer' },
        message: 'must be an integer, written in decimal digits',
      })),
    };
  };
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = (route) => {
  const check = TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0]);
  return findingUnknownFields(route.schema, route.httpPart === 'body' ? check : wholeIntegers(route.schema, check));
};
