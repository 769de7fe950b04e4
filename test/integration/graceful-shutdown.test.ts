import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { closeGracefully, listen } from '../../src/http/lifecycle.js';

function buildSlowApp(delayMs: number) {
  const app = express();
  app.get('/slow', async (_req, res) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    res.json({ finished: true });
  });
  return app;
}

describe('closeGracefully', () => {
  it('lets an in-flight request finish, then refuses new connections', async () => {
    const server = await listen(buildSlowApp(400), 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const closing = closeGracefully(server, 5_000);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ finished: true });
    expect(await closing).toBe(true);
    await expect(fetch(`http://127.0.0.1:${port}/slow`)).rejects.toThrow();
  });

  it('cuts requests that outlive the timeout and reports it', async () => {
    const server = await listen(buildSlowApp(5_000), 0, '127.0.0.1');
    const { port } = server.address() as AddressInfo;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`).catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await closeGracefully(server, 200)).toBe(false);
    expect(await inFlight).toBeInstanceOf(Error);
  });
});
