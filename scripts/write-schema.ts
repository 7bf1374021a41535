/**
 * Writes schema/sluice.schema.json, the JSON Schema editors use for sluice.yaml (`npm run schema`),
 * and the `config` property of the Helm chart's helm/sluice/values.schema.json, so that `helm
 * install` validates sluice's configuration with the same rules `sluice --check` applies. Both are
 * generated from the one zod schema (src/config/schema.ts) and committed; tests fail when a committed
 * file differs from what this script would write.
 *
 * One adjustment is made to the generated schema: sluice substitutes `${VAR}` (and `${VAR:-fallback}`)
 * *before* it validates, so `url: ${REDIS_URL}` and `port: ${PORT}` are valid configurations although
 * the text `${REDIS_URL}` does not match the URL pattern and `${PORT}` is not a number. Wherever such
 * a value could stand, a string holding a reference is accepted as well, so editors do not flag
 * configurations that `sluice --check` accepts.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/config/schema.js';

/** Where the schema is written, relative to the repository root. */
export const SCHEMA_PATH = 'schema/sluice.schema.json';

/** An environment reference as the loader substitutes it: `${NAME}` or `${NAME:-fallback}`. */
export const ENV_REFERENCE_PATTERN = '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}';

const ENV_REFERENCE_SCHEMA = {
  type: 'string',
  pattern: ENV_REFERENCE_PATTERN,
  description: 'A ${VAR} or ${VAR:-fallback} reference, substituted from the environment before validation.',
} as const;

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Returns a copy of `node` in which every value the loader could have substituted also accepts an
 * environment reference: constrained strings (pattern, format, enum) and, since an unquoted
 * `${PORT}` takes the type YAML gives its value, numbers, integers and booleans. A branch of a
 * union is left alone unless it is a constrained string (the union gets the alternative once).
 */
export function acceptEnvReferences(node: JsonValue, inUnion = false): JsonValue {
  if (Array.isArray(node)) return node.map((child) => acceptEnvReferences(child, inUnion));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, JsonValue> = {};
  for (const [name, child] of Object.entries(node)) {
    // Property names are not values; `default`, `const` and `enum` hold data, not subschemas.
    if (name === 'propertyNames' || name === 'default' || name === 'const' || name === 'enum') out[name] = child;
    else out[name] = acceptEnvReferences(child, name === 'anyOf' || name === 'oneOf');
  }
  const constrainedString = out.type === 'string' && ('pattern' in out || 'format' in out || 'enum' in out);
  const scalar = (out.type === 'number' || out.type === 'integer' || out.type === 'boolean') && !('const' in out);
  if (!constrainedString && !(scalar && !inUnion)) return out;
  // Keep the annotations (description, default) on the outside, where editors show them.
  const { description, default: fallback, ...constraint } = out;
  const wrapped: Record<string, JsonValue> = { anyOf: [constraint, { $ref: '#/$defs/envReference' }] };
  if (description !== undefined) wrapped.description = description;
  if (fallback !== undefined) wrapped.default = fallback;
  return wrapped;
}

/** The exact text of schema/sluice.schema.json. */
export function schemaFileText(): string {
  const schema = acceptEnvReferences(configJsonSchema() as JsonValue) as Record<string, JsonValue>;
  const defs = (schema.$defs ?? {}) as Record<string, JsonValue>;
  return `${JSON.stringify({ ...schema, $defs: { ...defs, envReference: { ...ENV_REFERENCE_SCHEMA } } }, null, 2)}\n`;
}

/** Where the chart's values schema is, relative to the repository root. */
export const VALUES_SCHEMA_PATH = 'helm/sluice/values.schema.json';

/**
 * The sluice schema in the draft Helm reads (draft-07: Helm 3 before 3.18 validates with
 * gojsonschema, which knows no 2020-12): `$defs` become root `definitions` of the values schema and
 * every `$ref` follows. The keywords the generated schema uses (type, properties, anyOf, oneOf,
 * const, enum, pattern, minimum, exclusiveMinimum as a number...) mean the same in draft-07, and its
 * patterns are RE2-compatible, as Go's validators need.
 */
export function helmConfigSchema(): { config: JsonValue; definitions: Record<string, JsonValue> } {
  const schema = JSON.parse(schemaFileText()) as Record<string, JsonValue>;
  const rewrite = (node: JsonValue): JsonValue => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, JsonValue> = {};
    for (const [name, child] of Object.entries(node)) {
      if (name === '$ref' && typeof child === 'string') out[name] = child.replace(/^#\/\$defs\//, '#/definitions/');
      else out[name] = rewrite(child);
    }
    return out;
  };
  const { $schema: _draft, $defs = {}, title: _title, ...config } = schema;
  const described = {
    ...config,
    description: "sluice's configuration file (schema/sluice.schema.json, generated from the same zod schema by scripts/write-schema.ts).",
  };
  return { config: rewrite(described), definitions: rewrite($defs) as Record<string, JsonValue> };
}

/** The exact text of helm/sluice/values.schema.json: the committed file with `config` regenerated. */
export function valuesSchemaFileText(current: string): string {
  const values = JSON.parse(current) as Record<string, JsonValue>;
  const { config, definitions } = helmConfigSchema();
  const properties = { ...(values.properties as Record<string, JsonValue>), config };
  return `${JSON.stringify({ ...values, properties, definitions }, null, 2)}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = fileURLToPath(new URL(`../${SCHEMA_PATH}`, import.meta.url));
  await writeFile(target, schemaFileText());
  process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
  const valuesTarget = fileURLToPath(new URL(`../${VALUES_SCHEMA_PATH}`, import.meta.url));
  await writeFile(valuesTarget, valuesSchemaFileText(await readFile(valuesTarget, 'utf8')));
  process.stdout.write(`wrote ${VALUES_SCHEMA_PATH} (its config property)\n`);
}
