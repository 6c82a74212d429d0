// The API's request validation: TypeBox's compiler (@fastify/type-provider-typebox), except that a
// query string, path or header value is taken for an integer only when it is written as one, and
// that unknown fields are found here, each object's as one issue.
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { isRecord } from '../images/validate.js';

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
  maxItems?: unknown;
}

type UnknownFieldsIssue = { instancePath: string; schemaPath: string; keyword: 'additionalProperties'; params: { additionalProperties: string[] }; message: string };

/** An array longer than its schema's maxItems, worded as TypeBox words it. */
type TooManyItemsIssue = { instancePath: string; schemaPath: string; keyword: 'maxItems'; params: { limit: number }; message: string };

type WalkIssue = UnknownFieldsIssue | TooManyItemsIssue;

/** Whether `shape` is an array's schema whose items are described. */
const isArraySchema = (shape: ObjectSchema | undefined): shape is ObjectSchema & { items: object } =>
  shape?.type === 'array' && shape.items !== undefined && typeof shape.items === 'object';

/** `shape` where it is an object's schema with properties and `value` an object it describes. */
const objectSchemaOf = (shape: ObjectSchema | undefined, value: unknown): (ObjectSchema & { properties: Record<string, unknown> }) | undefined =>
  shape?.type === 'object' && shape.properties !== undefined && isRecord(value)
    ? (shape as ObjectSchema & { properties: Record<string, unknown> })
    : undefined;

/** Whether an object's schema takes no field but its properties. */
const isClosed = (shape: ObjectSchema): boolean => shape.additionalProperties === false && shape.patternProperties === undefined;

/** The fields of `value` that its schema's objects do not have (`additionalProperties: false`),
 * in and under it (an object's properties, an array's items), one issue per object naming them
 * all. TypeBox reports each unknown field as an issue of its own before the object's one, and
 * keeps 8 issues (its maxErrors): from 8 unknown fields on, the one naming them was dropped; and
 * finding them cost it ~4 µs a field (1.5 s for a 4 MiB body of 391,000 short keys, the event loop
 * blocked throughout), where a set lookup costs ~0.05: figures profiled by hand (2026-12-07); the
 * api-input.test.ts test "a 4 MiB body of short unknown keys ..." prints that body's time now.
 * It runs on every check of a body, query and headers: nothing is copied, and a path is made only
 * for an issue (from `path`, the names and indexes down to `value`). An array longer than its
 * schema's maxItems is an issue of its own, its items unwalked. */
function unknownFields(schema: unknown, value: unknown, path: (string | number)[] = [], found: WalkIssue[] = []): WalkIssue[] {
  const shape = schema as ObjectSchema | undefined;
  if (Array.isArray(value) && isArraySchema(shape)) {
    // An array longer than its schema's maxItems is refused here for its length alone, neither its
    // items walked nor the value given to TypeBox: its check and its issues went through every item
    // whatever the length (a 4 MiB body's 10^6 numbers as `args`, 1.3 s of event loop; 10^6 `{}`
    // as `tests`, 3 s), before the policy refused the count.
    if (typeof shape.maxItems === 'number' && value.length > shape.maxItems) {
      const [instancePath, schemaPath] = pointers(path);
      const limit = shape.maxItems;
      found.push({ instancePath, schemaPath, keyword: 'maxItems', params: { limit }, message: `must not have more than ${limit} items` });
      return found;
    }
    for (let index = 0; index < value.length; index++) {
      // Enough said (the caller answers with these alone): an array of 500,000 items with an
      // unknown field each is not walked to its end, nor answered with an issue for each.
      if (found.length >= MAX_ISSUES) return found;
      path.push(index);
      unknownFields(shape.items, value[index], path, found);
      path.pop();
    }
    return found;
  }
  const objectSchema = objectSchemaOf(shape, value);
  if (!objectSchema) return found;
  const properties = objectSchema.properties;
  const fields = value as Record<string, unknown>;
  // The object's issue before those of its fields.
  const at = found.length;
  // One pass over its keys (Object.entries' pairs, for an object of 400,000 unknown keys 400,000
  // arrays, cost 3 times that); only the schema's own properties are looked into.
  const unknown = isClosed(objectSchema) ? Object.keys(fields).filter((name) => !Object.hasOwn(properties, name)) : [];
  for (const name in properties) {
    if (!Object.hasOwn(properties, name) || !Object.hasOwn(fields, name)) continue;
    path.push(name);
    unknownFields(properties[name], fields[name], path, found);
    path.pop();
  }
  if (unknown.length > 0) {
    const [instancePath, schemaPath] = pointers(path);
    found.splice(at, 0, { instancePath, schemaPath: `${schemaPath}/additionalProperties`, keyword: 'additionalProperties', params: { additionalProperties: unknown }, message: 'must not have additional properties' });
  }
  return found;
}

/** A walk's path as TypeBox writes an issue's instance and schema paths (JSON Pointers: "/a/0",
 * "#/properties/a/items"). */
function pointers(path: (string | number)[]): [instancePath: string, schemaPath: string] {
  let instancePath = '';
  let schemaPath = '#';
  for (const step of path) {
    if (typeof step === 'number') {
      instancePath += `/${step}`;
      schemaPath += '/items';
    } else {
      instancePath += `/${escapePointer(step)}`;
      schemaPath += `/properties/${escapePointer(step)}`;
    }
  }
  return [instancePath, schemaPath];
}

/** `value` with every field its schema's objects do not have left out, for TypeBox to check the
 * rest; an object that takes other fields keeps them. Made only for a value refused already. */
function withoutUnknownFields(schema: unknown, value: unknown): unknown {
  const shape = schema as ObjectSchema | undefined;
  if (Array.isArray(value) && isArraySchema(shape)) return value.map((item: unknown) => withoutUnknownFields(shape.items, item));
  const objectSchema = objectSchemaOf(shape, value);
  if (!objectSchema) return value;
  const fields = value as Record<string, unknown>;
  const known: Record<string, unknown> = isClosed(objectSchema) ? {} : { ...fields };
  for (const [name, property] of Object.entries(objectSchema.properties)) if (Object.hasOwn(fields, name)) known[name] = withoutUnknownFields(property, fields[name]);
  return known;
}

/** A JSON Pointer's escaping of one name (RFC 6901), as TypeBox writes instance paths. */
const escapePointer = (name: string): string => name.replace(/~/g, '~0').replace(/\//g, '~1');

/** A check with unknown fields found first (unknownFields), the rest by `check` on the value
 * without them, its issues after theirs. */
function findingUnknownFields(schema: unknown, check: Check): Check {
  return (value: unknown) => {
    const issues = unknownFields(schema, value);
    if (issues.length === 0) return check(value);
    // An overlong list is not checked by TypeBox (unknownFields).
    if (issues.length >= MAX_ISSUES || issues.some((issue) => issue.keyword === 'maxItems')) return { error: issues };
    const rest = check(withoutUnknownFields(schema, value)) as { error?: FastifySchemaValidationError[] };
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
