import { z } from 'zod';
import { type FieldLabels, labelFields } from './field-labels.js';

/**
 * A request body that changes money: a field the schema does not name is refused with a 400
 * naming it, never ignored. An ignored `effective_from` once made rates meant for next year
 * apply at once, and an ignored misspelt option looks to the client exactly like one applied.
 * Forms (and JSON clients) may carry the CSRF token in the body, where csrf.ts reads it; it is
 * allowed here and dropped from what the route gets. `labels` are the form's labels of the fields,
 * which a refusal shown on a page names them by.
 */
export function strictBody<Shape extends z.ZodRawShape>(shape: Shape, labels: FieldLabels = {}) {
  const schema = z.strictObject({ ...shape, csrf_token: z.string().optional() }).transform((body) => {
    const { csrf_token: _csrfToken, ...fields } = body as { csrf_token?: string };
    return fields as z.output<z.ZodObject<Shape>>;
  });
  return labelFields(schema, labels);
}
