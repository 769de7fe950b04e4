import { CONFIG_ERROR_EXIT_CODE, ConfigError } from '../config/config.js';

/**
 * Runs a command-line tool's main. Whatever it throws ends the process with the message alone on
 * stderr: a ConfigError (its message lists every problem) exits 78 (EX_CONFIG), as the server
 * does, so a script or an orchestrator tells a bad setting from a failed run; the tool's own
 * errors exit with what `exitCodeOf` says for them, anything else 1.
 */
export function runTool(
  main: () => Promise<void>,
  exitCodeOf: (error: unknown) => number | undefined = () => undefined,
) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(error instanceof ConfigError ? CONFIG_ERROR_EXIT_CODE : (exitCodeOf(error) ?? 1));
  });
}
