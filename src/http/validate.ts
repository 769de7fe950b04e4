import type { z } from 'zod';
import { BadRequestError, InvalidFieldsError } from '../shared/errors.js';
import { fieldLabelsOf } from './field-labels.js';
import { NOT_A_JSON_OBJECT_MESSAGE } from './json-object-body.js';

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
      if (issue.input === null) return 'cannot be null (leave it out, or give a value)';
      if (Array.isArray(issue.input)) return 'must be given once';
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
  const result = schema.safeParse(input, { error: describeIssue, reportInput: true });
  if (result.success) return result.data;
  // A JSON list or bare value where fields go: about the body as a whole, not a field of it.
  if (input !== undefined && result.error.issues.some(isObjectExpectedAtTop)) {
    throw new BadRequestError(NOT_A_JSON_OBJECT_MESSAGE);
  }
  // One reason a field: a number past 2^53 fails both "an integer" and the route's own maximum,
  // and the maximum is the one worth reading, so a field's last reason wins.
  const fields: Record<string, string> = {};
  for (const issue of result.error.issues) {
    // No form or query field takes a list, so a list is a field given more than once
    // (?start=a&start=b); unions and coerced numbers would otherwise word it as something else.
    const isRepeated = issue.path.length > 0 && Array.isArray(valueAt(input, issue.path));
    fields[issue.path.join('.') || name] = isRepeated ? 'must be given once' : issue.message;
  }
  throw new InvalidFieldsError(fields, fieldLabelsOf(schema));
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
