import { isUtf8 } from 'node:buffer';
import type { RequestHandler } from 'express';
import { BadRequestError } from '../shared/errors.js';
import { findFirstNonUtf8Byte } from '../shared/utf8-bytes.js';

const PERCENT = 0x25;
const AMPERSAND = 0x26;
const EQUALS = 0x3d;
/** Longer field names are cut in a message: the name is the client's text, echoed back. */
const NAME_SHOWN_LENGTH = 40;

/** A field of a form or a query string whose text, its %-escapes decoded, is not UTF-8. */
export interface NotUtf8Field {
  /** The field's name as read, or undefined when the name itself is not UTF-8. */
  name: string | undefined;
  /** What begins the first bad sequence, as sent: `%E9`, or `the byte 0xE9` for a byte sent unescaped. */
  sent: string;
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * `bytes` with each %-escape (a % and two hex digits) as the byte it names, and every other byte as
 * it is: the bytes the form parser reads as the fields' text. `sources`, when given, is told each
 * decoded byte's offset in `bytes`.
 */
function unescapedBytes(bytes: Uint8Array, sources?: number[]): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let length = 0;
  for (let index = 0; index < bytes.length; index++) {
    sources?.push(index);
    const high = bytes[index] === PERCENT ? hexValue(bytes[index + 1]) : -1;
    const low = high === -1 ? -1 : hexValue(bytes[index + 2]);
    if (low === -1) {
      out[length++] = bytes[index] as number;
      continue;
    }
    out[length++] = high * 16 + low;
    index += 2;
  }
  return out.subarray(0, length);
}

/** Whether `part` holds a % that begins no %-escape (a % and two hex digits), and whether it holds an escape. */
function percentsIn(part: Uint8Array): { hasStray: boolean; hasEscape: boolean } {
  let hasStray = false;
  let hasEscape = false;
  for (let index = part.indexOf(PERCENT); index !== -1; index = part.indexOf(PERCENT, index + 1)) {
    if (hexValue(part[index + 1]) !== -1 && hexValue(part[index + 2]) !== -1) hasEscape = true;
    else hasStray = true;
  }
  return { hasStray, hasEscape };
}

/** What begins the first sequence of `part` that is not UTF-8, as sent; undefined when all of it is UTF-8. */
function firstNotUtf8In(part: Uint8Array): string | undefined {
  const sources: number[] = [];
  const decoded = unescapedBytes(part, sources);
  const offset = findFirstNonUtf8Byte(decoded);
  if (offset === undefined) return undefined;
  const source = sources[offset] as number;
  if (part[source] === PERCENT) return Buffer.from(part.subarray(source, source + 3)).toString('latin1');
  return `the byte 0x${(part[source] as number).toString(16).toUpperCase().padStart(2, '0')}`;
}

/** A field's name as the parsers read it (`+` a space, %-escapes decoded), cut for a message. */
function readableName(name: Uint8Array): string {
  const text = Buffer.from(name).toString('latin1').replace(/\+/g, ' ');
  let read: string;
  try {
    read = decodeURIComponent(text);
  } catch {
    read = text;
  }
  return read.length > NAME_SHOWN_LENGTH ? `${read.slice(0, NAME_SHOWN_LENGTH)}…` : read;
}

/** The `name=value` fields of a form body or query string, as sent (`value` undefined for a field with no `=`). */
function* fieldsOf(encoded: Uint8Array): Generator<{ name: Uint8Array; value: Uint8Array | undefined }> {
  let start = 0;
  while (start <= encoded.length) {
    let end = encoded.indexOf(AMPERSAND, start);
    if (end === -1) end = encoded.length;
    const pair = encoded.subarray(start, end);
    const equals = pair.indexOf(EQUALS);
    yield equals === -1
      ? { name: pair, value: undefined }
      : { name: pair.subarray(0, equals), value: pair.subarray(equals + 1) };
    start = end + 1;
  }
}

/**
 * The first field of `encoded` (a form body, or a query string as bytes) whose name or value, its
 * %-escapes decoded, is not UTF-8, or undefined when every field's is. Most text has no byte that is
 * not ASCII and no escape, and is looked at once (isUtf8); the fields are looked at one by one only
 * to name the bad one. The whole text can be judged at once: `&`, `=` and `+` are ASCII, which no
 * UTF-8 character's bytes include, so a character cannot begin in one field and end in the next.
 */
export function findNotUtf8Field(encoded: Uint8Array): NotUtf8Field | undefined {
  if (isUtf8(encoded.includes(PERCENT) ? unescapedBytes(encoded) : encoded)) return undefined;
  for (const { name, value } of fieldsOf(encoded)) {
    const inName = firstNotUtf8In(name);
    if (inName !== undefined) return { name: undefined, sent: inName };
    const inValue = value === undefined ? undefined : firstNotUtf8In(value);
    if (inValue !== undefined) return { name: readableName(name), sent: inValue };
  }
  // Unreachable while the whole is judged as its fields are; said as a field's, not passed as UTF-8.
  return { name: undefined, sent: 'a byte' };
}

/**
 * The first field of a form whose name or value holds both a % that begins no %-escape and an escape,
 * or undefined when none does: `name` as for findNotUtf8Field. The form parser (qs) decodes a field's
 * text whole or not at all, so `caf%C3%A9 100%` was read, and stored, with its escapes as their own
 * text. A stray % in a field with no escape is read as itself, as its sender most likely meant
 * (`100% refund`), and is not looked for. Only a form with a stray % anywhere is looked at field by field.
 */
export function findFieldLeftUndecoded(encoded: Uint8Array): Pick<NotUtf8Field, 'name'> | undefined {
  if (!percentsIn(encoded).hasStray) return undefined;
  for (const { name, value } of fieldsOf(encoded)) {
    const inName = percentsIn(name);
    if (inName.hasStray && inName.hasEscape) return { name: undefined };
    const inValue = value === undefined ? undefined : percentsIn(value);
    if (inValue?.hasStray && inValue.hasEscape) return { name: readableName(name) };
  }
  return undefined;
}

function describeField(field: NotUtf8Field, fieldWord: string): string {
  const holder = field.name === undefined ? `a ${fieldWord}'s name` : `its ${fieldWord} ${field.name}`;
  return `${holder} holds ${field.sent}, which begins no UTF-8 character`;
}

/** What a form that is not UTF-8 is told (400). */
export function formNotUtf8Message(field: NotUtf8Field): string {
  return `The form was not sent as UTF-8: ${describeField(field, 'field')}. Nothing was done; send the form from its page, or encode its text as UTF-8 (é is %C3%A9).`;
}

/** What a form with a field findFieldLeftUndecoded finds is told (400). */
export function formLeftUndecodedMessage(field: Pick<NotUtf8Field, 'name'>): string {
  const holder = field.name === undefined ? "a field's name" : `its field ${field.name}`;
  return `The form could not be read as sent: ${holder} holds a % that begins no %-escape (a % and two hex digits) beside escapes, which the form would be read with undecoded. Nothing was done; write a % as %25.`;
}

/** What an address whose query string is not UTF-8 is told (400). */
export function queryNotUtf8Message(field: NotUtf8Field): string {
  return `The address was not sent as UTF-8: ${describeField(field, 'query field')}. Nothing was done; encode the query's text as UTF-8 (é is %C3%A9).`;
}

/**
 * A body-parser `verify` for express.urlencoded: refuses (400) a form whose text, its %-escapes
 * decoded, is not UTF-8, or that the parser would read with escapes undecoded (findFieldLeftUndecoded). The parser read such an escape (`reason=caf%E9`, from a Latin-1 client or a
 * script that encodes so) as the escape's own text, the whole field undecoded ("caf%E9"), and such
 * a byte sent unescaped as U+FFFD, and the route stored either: a void's reason, a tier's description,
 * a password other than the one typed, which no one could sign in with. A form in another charset is refused before (body-charset.ts).
 */
export function refuseFormNotUtf8(_req: unknown, _res: unknown, body: Buffer): void {
  const field = findNotUtf8Field(body);
  if (field !== undefined) throw new BadRequestError(formNotUtf8Message(field));
  const undecoded = findFieldLeftUndecoded(body);
  if (undecoded !== undefined) throw new BadRequestError(formLeftUndecodedMessage(undecoded));
}

/**
 * Refuses (400) a request whose query string, its %-escapes decoded, is not UTF-8: the query parser
 * reads each such escape as U+FFFD, so `?user=caf%E9` filtered on "caf\ufffd" and showed it back, and
 * a form's action carries its page's query. Only an address with a %-escape in its query is looked at.
 */
export const refuseQueryNotUtf8: RequestHandler = (req, _res, next) => {
  const url = req.originalUrl;
  const question = url.indexOf('?');
  if (question === -1 || !url.includes('%', question)) {
    next();
    return;
  }
  // The address is ASCII (Node answers a request line with other bytes 400 itself): only its
  // escapes can be other than UTF-8.
  const field = findNotUtf8Field(Buffer.from(url.slice(question + 1), 'latin1'));
  next(field === undefined ? undefined : new BadRequestError(queryNotUtf8Message(field)));
};
