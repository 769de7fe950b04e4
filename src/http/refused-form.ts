/** A refused form's fields as its view marks them, and the attributes each field takes. */
export interface RefusedForm {
  /** Of `names`, those the refusal is about, in the form's order. */
  fields: string[];
  /**
   * ` aria-invalid="true" aria-describedby="<errorId>"` for a refused field, with ` autofocus` on
   * the first of them; '' for the others. The message itself takes the focus when `fields` is empty.
   * A field with a hint of its own passes the hint's id: it is described by the message, then the
   * hint, or by the hint alone when not refused (a second aria-describedby in the tag is dropped by
   * the browser, so a field that wrote its hint's kept it and lost the message).
   */
  attrs(name: string, hintId?: string): string;
}

/**
 * Ties a refused form's fields to the message that refuses them (views: `refusedForm` in
 * app.locals). `invalid` is what the route passed, `invalidFieldsOf(error)` or undefined.
 */
export function describeRefusedForm(invalid: unknown, names: string[], errorId: string): RefusedForm {
  const fields = Array.isArray(invalid) ? names.filter((name) => invalid.includes(name)) : [];
  return {
    fields,
    attrs: (name, hintId) =>
      fields.includes(name)
        ? ` aria-invalid="true" aria-describedby="${errorId}${hintId ? ` ${hintId}` : ''}"${name === fields[0] ? ' autofocus' : ''}`
        : hintId
          ? ` aria-describedby="${hintId}"`
          : '',
  };
}
