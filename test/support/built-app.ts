import path from 'node:path';
import { inject } from 'vitest';

/**
 * The compiled counterpart of one of the app's TypeScript files, in the build that
 * test/support/global-setup.ts made once for this run: `builtFile('src/cli/user.cli.ts')`.
 * Node starts it in about half the CPU that `node --import tsx` spends on the source; the tests
 * that are about the tsx path (`npm start`, `npm run <script>`) keep running the source.
 */
export function builtFile(sourceFile: string): string {
  return path.join(inject('builtApp'), sourceFile.replace(/\.ts$/, '.js'));
}
