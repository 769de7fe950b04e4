/**
 * Whether this process is an npm script (`npm run user:create`, `npm run ingest`): npm sets
 * npm_lifecycle_event to the script's name. The tools read it to tell a word npm passed on from one
 * typed to `node dist/src/cli/…` itself (src/cli/stray-words.ts).
 */
export function isRunByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.npm_lifecycle_event);
}
