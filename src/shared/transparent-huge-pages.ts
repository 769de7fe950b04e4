import { readFile } from 'node:fs/promises';
import type { Logger } from './logger.js';

export type TransparentHugePagesMode = 'always' | 'madvise' | 'never';

export const TRANSPARENT_HUGE_PAGES_PATH = '/sys/kernel/mm/transparent_hugepage/enabled';

/** The selected mode of the kernel's `enabled` file ("always [madvise] never" -> madvise). */
export function parseTransparentHugePagesMode(text: string): TransparentHugePagesMode | undefined {
  const selected = /\[(always|madvise|never)\]/.exec(text)?.[1];
  return selected as TransparentHugePagesMode | undefined;
}

/** The host's mode, or undefined where the kernel does not say (not Linux, or the file is hidden). */
export async function readTransparentHugePagesMode(
  path = TRANSPARENT_HUGE_PAGES_PATH,
): Promise<TransparentHugePagesMode | undefined> {
  try {
    return parseTransparentHugePagesMode(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Warns when the host has transparent huge pages off. The argon2 module maps a fresh 19 MiB
 * for every sign-in and asks for huge pages for it; without them the kernel faults it in 4 kB
 * at a time, and on a 2-core machine a verify went from 12.5 to 65 ms (docs/operations.md).
 * Database tuning guides often say to turn them off, so a shared host may have done it.
 */
export function warnIfTransparentHugePagesOff(
  logger: Pick<Logger, 'warn'>,
  mode: TransparentHugePagesMode | undefined,
) {
  if (mode !== 'never') return;
  logger.warn(
    { transparentHugePages: mode, path: TRANSPARENT_HUGE_PAGES_PATH },
    'transparent huge pages are off on this host: every sign-in costs about five times the CPU ' +
      '(argon2 maps 19 MiB per verify); set them to madvise (docs/operations.md, "Host settings")',
  );
}
