import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { type CsvSendOptions, sendCsv } from '../../src/http/csv-response.js';

const COLUMNS = ['job_id', 'cost'] as const;

let server: http.Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** Serves GET /export with sendCsv over `source()`, counting the socket writes of each response. */
async function serve(source: () => AsyncIterable<string | Uint8Array>, options: CsvSendOptions = {}) {
  const socketWrites: number[] = [];
  const app = express();
  app.get('/export', async (_req, res, next) => {
    const socket = res.socket as net.Socket & { _writev?: unknown };
    const counted = socketWrites.push(0) - 1;
    const countWrite = <T extends (...args: never[]) => unknown>(write: T) =>
      ((...args: Parameters<T>) => {
        socketWrites[counted] = (socketWrites[counted] ?? 0) + 1;
        return write.apply(socket, args);
      }) as T;
    socket._write = countWrite(socket._write);
    if (typeof socket._writev === 'function') socket._writev = countWrite(socket._writev as () => unknown);
    try {
      await sendCsv(res, 'usage 2025.csv', COLUMNS, source(), options);
    } catch (error) {
      next(error);
    }
  });
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).type('text/plain').send(`failed: ${error.message}`);
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server?.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/export`, port, socketWrites };
}

describe('sendCsv', () => {
  it('sends the header row, then the chunks in order, as an attachment that is not cached', async () => {
    const { url } = await serve(async function* () {
      yield '1,0.50\n';
      yield new TextEncoder().encode('2,1.');
      yield '25\n3,0.00\n';
    });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="usage_2025.csv"');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.text()).toBe('job_id,cost\n1,0.50\n2,1.25\n3,0.00\n');
  });

  it('sends only the header row for an empty source', async () => {
    const { url } = await serve(async function* () {});
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('job_id,cost\n');
  });

  it('writes a one-chunk export to the socket once: headers, header row, rows and end together', async () => {
    const { url, socketWrites } = await serve(async function* () {
      yield '1,0.50\n2,1.25\n';
    });
    expect(await (await fetch(url)).text()).toBe('job_id,cost\n1,0.50\n2,1.25\n');
    const { url: url3, socketWrites: writes3 } = await serve(async function* () {
      yield '1,0.50\n';
      yield '2,1.25\n';
      yield '3,0.00\n';
    });
    expect(await (await fetch(url3)).text()).toBe('job_id,cost\n1,0.50\n2,1.25\n3,0.00\n');
    expect(socketWrites).toEqual([1]);
    // One write per chunk: the first with the headers and header row, the last with the end.
    expect(writes3).toEqual([3]);
  });

  it('answers a source that fails before its second chunk with the error, not a 200 cut short', async () => {
    const { url } = await serve(async function* () {
      yield '1,0.50\n';
      throw new Error('the database went away');
    });
    const response = await fetch(url);
    expect(response.status).toBe(500);
    expect(response.headers.get('content-disposition')).toBeNull();
    expect(await response.text()).toBe('failed: the database went away');
  });

  it('cuts the connection when the source fails after rows went out, so the download is incomplete', async () => {
    const { url } = await serve(async function* () {
      yield '1,0.50\n';
      yield '2,1.25\n';
      throw new Error('the database went away');
    });
    const response = await fetch(url);
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it('stops pulling and closes the source when the client hangs up, without waiting for the rest', async () => {
    let pulled = 0;
    let isClosed = false;
    const row = `${'9'.repeat(1000)}\n`.repeat(64);
    const { port } = await serve(async function* () {
      try {
        for (;;) {
          pulled += 1;
          yield row;
        }
      } finally {
        isClosed = true;
      }
    });
    const client = net.connect(port, '127.0.0.1');
    client.write('GET /export HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => client.once('data', resolve));
    // The client reads nothing more, so the socket fills and the source must wait.
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const pulledWhileStalled = pulled;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(pulled).toBe(pulledWhileStalled);
    client.destroy();
    await expect.poll(() => isClosed, { timeout: 2000 }).toBe(true);
    expect(pulled).toBeLessThan(1000);
  });

  it('cuts off a client that stops reading after the stall limit and closes the source', async () => {
    let isClosed = false;
    let stalls = 0;
    const row = `${'9'.repeat(1000)}\n`.repeat(64);
    const { port } = await serve(
      async function* () {
        try {
          for (;;) yield row;
        } finally {
          isClosed = true;
        }
      },
      { stallMs: 200, onStall: () => (stalls += 1) },
    );
    const client = net.connect(port, '127.0.0.1');
    const closed = new Promise((resolve) => client.once('close', resolve));
    client.on('error', () => {});
    client.write('GET /export HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => client.once('data', resolve));
    client.pause();
    // The client never reads again: the server gives up on it and stops the source.
    await expect.poll(() => isClosed, { timeout: 5000 }).toBe(true);
    expect(stalls).toBe(1);
    // Reading again, the client finds the connection cut, not a complete response.
    client.resume();
    await closed;
  });

  it('keeps a slow client that still reads: each drain restarts the stall limit', async () => {
    let stalls = 0;
    const row = `${'9'.repeat(1000)}\n`.repeat(64);
    const chunks = 40;
    const { port } = await serve(
      async function* () {
        for (let index = 0; index < chunks; index++) yield row;
      },
      { stallMs: 300, onStall: () => (stalls += 1) },
    );
    const client = net.connect(port, '127.0.0.1');
    let received = 0;
    client.write('GET /export HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    // Reads in bursts with pauses shorter than the limit, taking well over the limit in all.
    const reading = setInterval(() => (client.isPaused() ? client.resume() : client.pause()), 100);
    client.on('data', (data: Buffer) => {
      received += data.length;
    });
    await new Promise((resolve) => client.once('close', resolve));
    clearInterval(reading);
    expect(stalls).toBe(0);
    expect(received).toBeGreaterThan(chunks * row.length);
  });
});
