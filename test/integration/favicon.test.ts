import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFavicon } from '../../scripts/make-favicon.js';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';
import { buildTestApp, metricValue } from '../support/test-app.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const FAVICON_FILE = path.join(PROJECT_ROOT, 'public/favicon.ico');

/** The images of an ICO file: each entry's size and its PNG's pixels (RGBA rows, filter bytes dropped). */
function readIcon(icon: Buffer): { size: number; pixels: Buffer }[] {
  expect(icon.readUInt16LE(0)).toBe(0);
  expect(icon.readUInt16LE(2)).toBe(1);
  return Array.from({ length: icon.readUInt16LE(4) }, (_, index) => {
    const entry = 6 + 16 * index;
    const size = icon.readUInt8(entry) || 256;
    const png = icon.subarray(
      icon.readUInt32LE(entry + 12),
      icon.readUInt32LE(entry + 12) + icon.readUInt32LE(entry + 8),
    );
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([size, size]);
    const chunks: Buffer[] = [];
    for (let at = 8; at < png.length; ) {
      const length = png.readUInt32BE(at);
      if (png.toString('ascii', at + 4, at + 8) === 'IDAT') chunks.push(png.subarray(at + 8, at + 8 + length));
      at += 12 + length;
    }
    const rows = inflateSync(Buffer.concat(chunks));
    const stride = size * 4 + 1;
    const pixels = Buffer.concat(
      Array.from({ length: size }, (_, row) => rows.subarray(row * stride + 1, (row + 1) * stride)),
    );
    return { size, pixels };
  });
}

describe('GET /favicon.ico', () => {
  // Browsers ask for /favicon.ico by themselves wherever no page names an icon (a JSON answer,
  // /healthz, a CSV): it answered 404, an error in their consoles and a request logged and counted
  // as unmatched at every visit.
  it('answers the icon in public/, small, with headers that let the browser keep it', async () => {
    const metrics = createMetrics();
    const app = buildTestApp(db, { metrics });
    const response = await request(app).get('/favicon.ico').buffer(true).expect(200);
    expect(response.headers['content-type']).toBe('image/x-icon');
    expect(response.headers['cache-control']).toBe('public, max-age=86400');
    expect(response.headers['last-modified']).toBeTruthy();
    const body = response.body as Buffer;
    expect(body.equals(readFileSync(FAVICON_FILE))).toBe(true);
    expect(body.length).toBeLessThan(5 * 1024);
    expect(readIcon(body).map((image) => image.size)).toEqual([16, 32]);
    // No session is read or set for it.
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(await metricValue(metrics, 'http_requests_total', { endpoint: '/favicon.ico', status: '200' })).toBe(1);
    expect(await metricValue(metrics, 'http_requests_total', { endpoint: 'unmatched' })).toBe(0);
  });

  it('answers HEAD, and 304 to a browser that already has it', async () => {
    const app = buildTestApp(db);
    const head = await request(app).head('/favicon.ico').expect(200);
    expect(head.headers['content-type']).toBe('image/x-icon');
    const again = await request(app)
      .get('/favicon.ico')
      .set('If-Modified-Since', String(head.headers['last-modified']));
    expect(again.status).toBe(304);
  });

  it('is what scripts/make-favicon.ts draws', () => {
    const committed = readIcon(readFileSync(FAVICON_FILE));
    const drawn = readIcon(makeFavicon());
    expect(committed.map((image) => image.size)).toEqual(drawn.map((image) => image.size));
    committed.forEach((image, index) => {
      expect(image.pixels.equals(drawn[index]?.pixels ?? Buffer.alloc(0)), `${image.size} px`).toBe(true);
    });
  });
});
