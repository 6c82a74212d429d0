// The API's request validation: TypeBox's compiler (@fastify/type-provider-typebox), except that a
// query string, path or header value is taken for an integer only when it is written as one.
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';

/** An integer as a query string writes it: decimal digits, a sign at most. */
const DECIMAL_INTEGER = /^[+-]?[0-9]+$/;

/** The properties of an object schema that hold an integer (`?timeoutMs=`). */
function integerProperties(schema: unknown): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  return Object.keys(properties).filter((name) => properties[name]!.type === 'integer');
}

/** TypeBox converts a query's text to the schema's types before checking it (Value.Convert), and
 * reads "1.5" as the integer 1, "0x10" as 16 and "1e3" as 1000: a `?timeoutMs=1.5` was taken as 1,
 * where fastify's own validation (ajv's coerceTypes) refuses a value that is not a whole number.
 * Such a value is refused here as the schema refuses any other (400 invalid_request, naming it);
 * a body is JSON, its numbers typed already, and checked as it is. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = (route) => {
  const check = TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0]);
  const integers = route.httpPart === 'body' ? [] : integerProperties(route.schema);
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
};
