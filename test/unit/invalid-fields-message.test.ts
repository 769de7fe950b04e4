import { describe, expect, it } from 'vitest';
import { InvalidFieldsError } from '../../src/shared/errors.js';
import { NOT_A_PLACE_REASON } from '../../src/shared/list-place.js';

describe('InvalidFieldsError message', () => {
  it.each<{ name: string; fields: Record<string, string>; message: string }>([
    {
      name: 'two sentences: the first loses its full stop before the separator, the last keeps it',
      fields: { older: NOT_A_PLACE_REASON, newer: NOT_A_PLACE_REASON },
      message: `older: ${NOT_A_PLACE_REASON.slice(0, -1)}; newer: ${NOT_A_PLACE_REASON}`,
    },
    {
      name: 'reasons that are not sentences are joined as they are',
      fields: { cpu: 'must be a plain decimal', gpu: 'is required' },
      message: 'cpu: must be a plain decimal; gpu: is required',
    },
    {
      name: 'an ellipsis is not a full stop',
      fields: { note: 'is cut short at "abc..."', gpu: 'is required.' },
      message: 'note: is cut short at "abc..."; gpu: is required.',
    },
    { name: 'one reason is left whole', fields: { older: 'is not here.' }, message: 'older: is not here.' },
  ])('$name', ({ fields, message }) => {
    const error = new InvalidFieldsError(fields, { older: 'Older', newer: 'Newer' });
    expect(error.message).toBe(message);
    expect(error.readableMessage).toBe(message.replace('older:', 'Older:').replace('newer:', 'Newer:'));
  });
});
