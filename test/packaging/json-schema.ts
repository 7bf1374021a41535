/**
 * JSON Schema validation for the packaging tests, with ajv (draft 2020-12 for sluice's own schema,
 * draft-07 for the Helm chart's values.schema.json, the draft Helm reads) and ajv-formats.
 */
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject, Options, ValidateFunction } from 'ajv';
import type { Ajv2020 as Ajv2020Class } from 'ajv/dist/2020.js';
import type { FormatsPlugin } from 'ajv-formats';

// ajv and ajv-formats are CommonJS; require() sidesteps the default-export interop of ESM.
const require = createRequire(import.meta.url);
const { Ajv2020 } = require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020Class };
const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
const addFormats = (require('ajv-formats') as { default: FormatsPlugin }).default;

const OPTIONS: Options = { allErrors: true, strict: true };

/** Compiles `schema` with the validator of the draft it declares (2020-12 or draft-07). */
export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  const draft = typeof schema.$schema === 'string' ? schema.$schema : '';
  const ajv = draft.includes('2020-12') ? new Ajv2020(OPTIONS) : draft.includes('draft-07') ? new Ajv(OPTIONS) : undefined;
  if (ajv === undefined) throw new Error(`unexpected $schema ${draft}`);
  addFormats(ajv);
  return ajv.compile(schema);
}

/** Validates, returning one readable line per error (empty when valid). */
export function schemaErrors(validate: ValidateFunction, data: unknown): string[] {
  if (validate(data)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
}
