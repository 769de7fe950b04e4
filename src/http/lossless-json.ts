import express from 'express';
import { BadRequestError } from '../shared/errors.js';
import { findFirstNonUtf8Byte } from '../shared/utf8-bytes.js';

/**
 * A JSON number exactly as the client wrote it ("0.10", "1e3", "0.10000000000000001"). Money
 * read from JSON must not pass through a float: JSON.parse turns 0.10000000000000001 into 0.1
 * and 1e3 into 1000, and the text the client sent is gone before any schema can judge it.
 */
export class JsonNumberText {
  constructor(readonly text: string) {}

  /** So a body logged or echoed back reads as the number that was sent. */
  toJSON(): string {
    return this.text;
  }
}

/** What parseJsonKeepingNumberText gives: JSON.parse's values, with every number a JsonNumberText. */
export type LosslessJson = null | boolean | string | JsonNumberText | LosslessJson[] | { [key: string]: LosslessJson };

/** The body is not JSON; `position` is the character offset where reading stopped. */
export class JsonSyntaxError extends Error {
  constructor(
    reason: string,
    readonly position: number,
  ) {
    super(`${reason} at position ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

/**
 * An object that gives a key twice. JSON.parse keeps the last value, unseen; the form parser's
 * list of the two values is refused as "must be given once", and a JSON body is refused as well
 * (`{"mem":0.08,"mem":0.50}` set the rate to 0.50 where the script's author read 0.08).
 */
export class JsonDuplicateKeyError extends JsonSyntaxError {
  constructor(
    readonly key: string,
    position: number,
  ) {
    super(`the key ${JSON.stringify(key)} is given twice`, position);
    this.name = 'JsonDuplicateKeyError';
  }
}

/** What a request body with a key given twice is told. */
export function duplicateKeyMessage(key: string): string {
  return `The request body gives ${key} more than once; send each field once.`;
}

/**
 * The body is JSON, or may be, but nested deeper than MAX_DEPTH: refused as that, not as "not valid
 * JSON", which sent a client that built its body by program looking for a typo.
 */
export class JsonTooDeepError extends JsonSyntaxError {
  constructor(
    readonly maxDepth: number,
    position: number,
  ) {
    super(`nested deeper than ${maxDepth} levels`, position);
    this.name = 'JsonTooDeepError';
  }
}

/**
 * Deeper than any money request. Recursion this deep is still far from the stack's end, so a
 * body of 50,000 "[" is a 400 rather than a RangeError.
 */
const MAX_DEPTH = 64;

// RFC 8259 number grammar; sticky, so it matches at the reader's position only.
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// A string's characters up to its closing quote: a backslash takes the next character with it.
// JSON.parse of the whole string then checks the escapes and refuses raw control characters.
const STRING_BODY = /[^"\\]*(?:\\[\s\S][^"\\]*)*"/y;
const WHITESPACE = /[ \t\n\r]*/y;

/**
 * JSON.parse, but numbers come back as JsonNumberText holding their literal text. Strings
 * (escapes included) and the structure are JSON.parse's, and so is what counts as JSON, but for a
 * key given twice in one object, which throws JsonDuplicateKeyError (JSON.parse keeps its last value);
 * "__proto__" is an ordinary key, never the prototype.
 */
export function parseJsonKeepingNumberText(text: string): LosslessJson {
  let position = 0;

  const fail = (reason: string): never => {
    throw new JsonSyntaxError(reason, position);
  };

  const skipWhitespace = () => {
    WHITESPACE.lastIndex = position;
    WHITESPACE.exec(text);
    position = WHITESPACE.lastIndex;
  };

  const readString = (): string => {
    const start = position;
    STRING_BODY.lastIndex = position + 1;
    if (!STRING_BODY.exec(text)) fail('unterminated string');
    position = STRING_BODY.lastIndex;
    try {
      return JSON.parse(text.slice(start, position)) as string;
    } catch {
      position = start;
      return fail('bad escape or control character in string');
    }
  };

  const expectLiteral = <T>(word: string, value: T): T => {
    if (!text.startsWith(word, position)) fail('unexpected token');
    position += word.length;
    return value;
  };

  const readValue = (depth: number): LosslessJson => {
    skipWhitespace();
    const next = text[position];
    if (next === '{') return readObject(depth + 1);
    if (next === '[') return readArray(depth + 1);
    if (next === '"') return readString();
    if (next === 't') return expectLiteral('true', true);
    if (next === 'f') return expectLiteral('false', false);
    if (next === 'n') return expectLiteral('null', null);
    NUMBER.lastIndex = position;
    const number = NUMBER.exec(text);
    if (!number) return fail(next === undefined ? 'unexpected end of JSON' : 'unexpected token');
    position = NUMBER.lastIndex;
    return new JsonNumberText(number[0]);
  };

  const readArray = (depth: number): LosslessJson[] => {
    if (depth > MAX_DEPTH) throw new JsonTooDeepError(MAX_DEPTH, position);
    position += 1;
    const items: LosslessJson[] = [];
    skipWhitespace();
    if (text[position] === ']') {
      position += 1;
      return items;
    }
    for (;;) {
      items.push(readValue(depth));
      skipWhitespace();
      const separator = text[position];
      position += 1;
      if (separator === ']') return items;
      if (separator !== ',') {
        position -= 1;
        fail('expected , or ]');
      }
    }
  };

  const readObject = (depth: number): { [key: string]: LosslessJson } => {
    if (depth > MAX_DEPTH) throw new JsonTooDeepError(MAX_DEPTH, position);
    position += 1;
    const object: { [key: string]: LosslessJson } = {};
    skipWhitespace();
    if (text[position] === '}') {
      position += 1;
      return object;
    }
    for (;;) {
      skipWhitespace();
      if (text[position] !== '"') fail('expected a quoted key');
      const keyAt = position;
      const key = readString();
      if (Object.hasOwn(object, key)) throw new JsonDuplicateKeyError(key, keyAt);
      skipWhitespace();
      if (text[position] !== ':') fail('expected :');
      position += 1;
      const value = readValue(depth);
      // As JSON.parse does: an own property even for "__proto__", which plain assignment would
      // turn into a prototype change.
      Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
      skipWhitespace();
      const separator = text[position];
      position += 1;
      if (separator === '}') return object;
      if (separator !== ',') {
        position -= 1;
        fail('expected , or }');
      }
    }
  };

  const value = readValue(0);
  skipWhitespace();
  if (position < text.length) fail('unexpected text after the JSON value');
  return value;
}

/**
 * Parses a JSON body keeping each number's literal text (JsonNumberText), for the routes that
 * take money as JSON numbers; mount it for those paths before express.json, which then finds
 * the body read and leaves it. Reading (size limit, compression, 413 and 415) is body-parser's own,
 * a charset other than UTF-8 refused before it (body-charset.ts); only the parse is ours. As with
 * express.json, an empty body is {}; any JSON value is read, and one that is not an object is
 * refused after the parsers (json-object-body.ts). Other content types (a form) pass through to the parsers after it.
 */
export function jsonKeepingNumberText(options: { limit: string }): express.RequestHandler {
  const readText = express.text({
    type: 'application/json',
    limit: options.limit,
    verify: (_req, _res, body, encoding) => refuseJsonBodyNotUtf8(body, encoding),
  });
  return (req, res, next) => {
    readText(req, res, (readError?: unknown) => {
      if (readError !== undefined) {
        next(readError);
        return;
      }
      if (typeof req.body !== 'string' || !req.is('application/json')) {
        next();
        return;
      }
      if (req.body === '') {
        req.body = {};
        next();
        return;
      }
      try {
        req.body = parseJsonKeepingNumberText(req.body);
      } catch (error) {
        next(
          error instanceof JsonDuplicateKeyError
            ? new BadRequestError(duplicateKeyMessage(error.key))
            : error instanceof JsonTooDeepError
              ? new BadRequestError(
                  `The request body is nested too deeply: at most ${error.maxDepth} levels of objects and lists.`,
                )
              : error instanceof JsonSyntaxError
                ? new BadRequestError('The request body is not valid JSON.')
                : error,
        );
        return;
      }
      next();
    });
  };
}

/**
 * A body-parser `verify` for express.json: refuses (400) a body whose objects give a key twice, which
 * JSON.parse would read as its last value. Anything else the check cannot read (not JSON, nested too
 * deeply, a charset it does not decode) is left for JSON.parse and the parser's own refusals.
 */
export function refuseDuplicateJsonKeys(_req: unknown, _res: unknown, body: Buffer, encoding: string | null): void {
  let text: string;
  try {
    // The decode this check makes anyway, strict: it refuses a body that is not UTF-8 at no cost more.
    text = new TextDecoder(encoding ?? 'utf-8', { fatal: isUtf8Label(encoding) }).decode(body);
  } catch {
    refuseJsonBodyNotUtf8(body, encoding);
    return;
  }
  // Only an object can give a key twice: most bodies have one key per field, and are checked in one pass.
  if (!text.includes('{')) return;
  try {
    parseJsonKeepingNumberText(text);
  } catch (error) {
    if (error instanceof JsonDuplicateKeyError) throw new BadRequestError(duplicateKeyMessage(error.key));
  }
}

function isUtf8Label(encoding: string | null): boolean {
  return encoding === null || /^utf-?8$/i.test(encoding);
}

/**
 * A body-parser `verify` that refuses (400) a UTF-8 body holding bytes that are not UTF-8, naming the
 * first. The parsers read each as U+FFFD, so a script writing Latin-1 (`café` as byte 0xE9) had its text
 * stored so, a void's reason or a payment reference garbled for good, and answered as a success. Another
 * charset is refused before the parsers, with 415 (body-charset.ts).
 */
export function refuseJsonBodyNotUtf8(body: Buffer, encoding: string | null): void {
  if (!isUtf8Label(encoding)) return;
  const offset = findFirstNonUtf8Byte(body);
  if (offset === undefined) return;
  const byte = (body[offset] ?? 0).toString(16).toUpperCase().padStart(2, '0');
  throw new BadRequestError(
    `The request body is not valid UTF-8: byte 0x${byte} at offset ${offset} (counting from 0) begins no valid UTF-8 character. Send JSON as UTF-8 (RFC 8259, 8.1).`,
  );
}
