import type { z } from 'zod';
import { BadRequestError, InvalidFieldsError } from '../shared/errors.js';
import { fieldLabelsOf } from './field-labels.js';
import { NOT_A_JSON_OBJECT_MESSAGE } from './json-object-body.js';
import { foldListShapedKeys } from './list-shaped-fields.js';

type RawIssue = z.core.$ZodRawIssue;

/**
 * Zod's own wording ("Too small: expected number to be >=1", "Invalid input: expected
 * string, received array") is written for programmers; people read these on a page. Only
 * issues whose schema gave no message of its own come here; undefined keeps zod's.
 */
export function describeIssue(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      // JSON's null: an optional field is left out, not null; a required one still needs a value.
      if (issue.input === null) return NULL_FIELD_REASON;
      if (Array.isArray(issue.input)) return REPEATED_FIELD_REASON;
      if (issue.expected === 'number' || issue.expected === 'int') return 'must be a whole number';
      if (issue.expected === 'string') return 'must be text';
      return undefined;
    case 'too_small':
      if (issue.origin === 'string') {
        return Number(issue.minimum) <= 1 ? 'is required' : `must be at least ${issue.minimum} characters`;
      }
      if (issue.origin === 'number' || issue.origin === 'int') {
        return issue.inclusive === false ? `must be more than ${issue.minimum}` : `must be at least ${issue.minimum}`;
      }
      return undefined;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'number' || issue.origin === 'int') {
        return issue.inclusive === false ? `must be less than ${issue.maximum}` : `must be at most ${issue.maximum}`;
      }
      return undefined;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_union': {
      // A choice that also takes an empty form field ('' or nothing): zod says only "Invalid
      // input". Name the choices when every branch is one; else the first branch's reason
      // (the field's own type: a date, a number), not the empty field's.
      const branches = issue.errors.flat();
      const isEmptyField = (branch: (typeof branches)[number]) =>
        branch.code === 'invalid_value' && branch.values.length === 1 && branch.values[0] === '';
      const choices = branches.flatMap((branch) =>
        branch.code === 'invalid_value' && !isEmptyField(branch) ? branch.values.map(String) : [],
      );
      if (choices.length > 0 && branches.every((branch) => branch.code === 'invalid_value')) {
        return `must be one of ${choices.join(', ')}`;
      }
      return branches.find((branch) => !isEmptyField(branch))?.message;
    }
    case 'unrecognized_keys':
      return `has ${issue.keys.length === 1 ? 'an unknown field' : 'unknown fields'}: ${issue.keys.join(', ')}`;
    default:
      return undefined;
  }
}

/**
 * Parses input at the edge; a failure is a 400 naming each field and what is wrong with it (by its
 * label on a page, where the schema's fields have labels: field-labels.ts). `name` names a bare
 * value (a path parameter) that has no field of its own.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, name = 'input'): z.infer<T> {
  const { fields: given, listShaped } = foldListShapedFields(schema, input);
  const result = schema.safeParse(given, { error: describeIssue, reportInput: true });
  if (result.success && listShaped.length === 0) return result.data;
  // A JSON list or bare value where fields go: about the body as a whole, not a field of it.
  if (input !== undefined && !result.success && result.error.issues.some(isObjectExpectedAtTop)) {
    throw new BadRequestError(NOT_A_JSON_OBJECT_MESSAGE);
  }
  // One reason a field: a number past 2^53 fails both "an integer" and the route's own maximum,
  // and the maximum is the one worth reading, so a field's last reason wins.
  const fields: Record<string, string> = {};
  for (const issue of result.error?.issues ?? []) {
    // No form or query field takes a list, so a list is a field given more than once
    // (?start=a&start=b); unions and coerced numbers would otherwise word it as something else.
    const value = issue.path.length > 0 ? valueAt(given, issue.path) : undefined;
    // JSON's null is refused as null whatever the field's own wording: a field whose schema words
    // its refusals itself (a list of choices, a decimal's form) said that of a null instead.
    fields[issue.path.join('.') || name] = Array.isArray(value)
      ? REPEATED_FIELD_REASON
      : value === null
        ? NULL_FIELD_REASON
        : (wrongTypeReasonOf(issue, value) ?? issue.message);
  }
  // Refused even where the schema would take it: a one-item list (?page[]=2) is not one value.
  for (const field of listShaped) fields[field] = REPEATED_FIELD_REASON;
  throw new InvalidFieldsError(fields, fieldLabelsOf(schema));
}

/**
 * A field sent as another JSON type than its own (a number or `true` where text goes, an object),
 * worded as that whatever the schema's own wording: one whose message was "is required" for any
 * type problem told a JSON client that sent `"note": 5` it had sent no note.
 */
function wrongTypeReasonOf(issue: z.core.$ZodIssue, value: unknown): string | undefined {
  if (issue.code !== 'invalid_type' || value === undefined) return undefined;
  if (issue.expected === 'string') return 'must be text';
  if (issue.expected === 'number' || issue.expected === 'int') return 'must be a whole number';
  return undefined;
}

/** What a field given more than once, or as a list or an object, is told. */
const REPEATED_FIELD_REASON = 'must be given once';

/** What a field given as JSON's null is told: an optional field is left out, not null. */
const NULL_FIELD_REASON = 'cannot be null (leave it out, or give a value)';

/**
 * `input` with each field of `schema` written as a list or an object (`start[]=`, `start[0]=`,
 * `page[a]=`) folded into that field as a list of its values, and the fields of `schema` given as a
 * list (`?start=a&start=b`, `start[]=` folded, a JSON list). The app's query parser folds such keys
 * already (list-shaped-fields.ts); a form's body, read by the simple parser too, is folded here. The
 * key used to be dropped as a field no schema named, and a page showed its default window as if it
 * had been asked for. No field takes a list. A key whose name before `[` is no field of `schema` is
 * left as it is: an unknown query field is ignored, and a strict body names it as sent.
 */
function foldListShapedFields(schema: z.ZodType, input: unknown): { fields: unknown; listShaped: string[] } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return { fields: input, listShaped: [] };
  const names = cachedFieldNamesOf(schema);
  if (names.size === 0) return { fields: input, listShaped: [] };
  const fields = foldListShapedKeys(input as Record<string, unknown>, (name) => names.has(name));
  const listShaped = [...names].filter((field) => Object.hasOwn(fields, field) && Array.isArray(fields[field]));
  return { fields, listShaped };
}

const fieldNamesBySchema = new WeakMap<z.ZodType, ReadonlySet<string>>();
function cachedFieldNamesOf(schema: z.ZodType): ReadonlySet<string> {
  let names = fieldNamesBySchema.get(schema);
  if (!names) {
    names = fieldNamesOf(schema);
    fieldNamesBySchema.set(schema, names);
  }
  return names;
}

/** The fields an object schema reads, through the wrappers put around one (transform, refine, optional). */
function fieldNamesOf(schema: z.core.$ZodType): Set<string> {
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  switch (def.type) {
    case 'object':
      return new Set(Object.keys(def.shape as object));
    case 'pipe':
      return fieldNamesOf(def.in as z.core.$ZodType);
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return fieldNamesOf(def.innerType as z.core.$ZodType);
    case 'union':
      return new Set((def.options as z.core.$ZodType[]).flatMap((option) => [...fieldNamesOf(option)]));
    case 'intersection':
      return new Set([...fieldNamesOf(def.left as z.core.$ZodType), ...fieldNamesOf(def.right as z.core.$ZodType)]);
    default:
      return new Set();
  }
}

function isObjectExpectedAtTop(issue: z.core.$ZodIssue): boolean {
  return issue.path.length === 0 && issue.code === 'invalid_type' && issue.expected === 'object';
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}
