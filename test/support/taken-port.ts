import net from 'node:net';

/** A port another process holds, as a second start (or anything else) on the same PORT would. */
export interface TakenPort {
  /** Lets the port go again; resolves once it is closed. */
  release(): Promise<void>;
}

/** Takes `port` of 127.0.0.1 with a listening server of no use but to hold it. */
export async function takePort(port: number): Promise<TakenPort> {
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  return { release: () => new Promise((resolve) => squatter.close(() => resolve())) };
}

/**
 * What a listen on a taken port of 127.0.0.1 fails with (lifecycle.ts). Written out, not imported
 * from there, so that a change of the wording fails the tests that quote it.
 */
export function portInUseMessage(port: number): string {
  return `port ${port} of 127.0.0.1 is already in use by another process (EADDRINUSE), another instance of the app perhaps: stop it, or set PORT to a free port`;
}

/** The one line a start on a taken port of 127.0.0.1 fails with. */
export function startFailedOnTakenPort(port: number): string {
  return `HPC Billing failed to start: ${portInUseMessage(port)}`;
}
