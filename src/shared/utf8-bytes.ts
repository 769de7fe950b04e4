/**
 * Finding where bytes stop being UTF-8, to name the first bad byte of a body: the payment webhooks'
 * (payment-provider.ts) and every JSON request body's (lossless-json.ts).
 */

/** A decoder that throws at bytes that are not UTF-8 and keeps a byte-order mark as text, so that text and bytes count alike. */
const strictUtf8 = () => new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The whole characters that open with `bytes`, holding back one cut short at their end; undefined past a byte that is not UTF-8. */
function wholeCharactersOf(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8().decode(bytes, { stream: true });
  } catch {
    return undefined;
  }
}

/**
 * The offset of the first byte of the first sequence in `bytes` that is not UTF-8 (a byte no UTF-8
 * has, a continuation byte alone, a character cut short, an overlong form, a surrogate), or undefined
 * when all of it is UTF-8.
 */
export function findFirstNonUtf8Byte(bytes: Uint8Array): number | undefined {
  try {
    strictUtf8().decode(bytes);
    return undefined;
  } catch {
    // Not UTF-8 somewhere: found below.
  }
  // The longest opening that decodes while more may follow (the decoder throws at the first byte that
  // cannot continue it), by halves: a body is at most 100 kB (a webhook's 64 KiB), so some 17 decodes.
  let decodes = 0;
  let fails = bytes.length + 1;
  while (fails - decodes > 1) {
    const middle = Math.floor((decodes + fails) / 2);
    if (wholeCharactersOf(bytes.subarray(0, middle)) === undefined) fails = middle;
    else decodes = middle;
  }
  // Its whole characters end where the bad sequence begins: a character cut short is that sequence.
  return Buffer.byteLength(wholeCharactersOf(bytes.subarray(0, decodes)) ?? '', 'utf8');
}
