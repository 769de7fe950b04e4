// Loaded before tsx by the npm scripts that run the TypeScript source (`node --import
// ./scripts/require-tsx.mjs --import tsx ...`). tsx is a devDependency, which `npm ci` leaves out
// when NODE_ENV=production is set; Node's own "Cannot find package 'tsx'", with a stack, said
// neither why nor what to do.
try {
  import.meta.resolve('tsx');
} catch {
  const command = process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}` : 'This command';
  const missing = `${command} cannot start: tsx, the devDependency that runs the TypeScript source, is not installed`;
  // Without NODE_ENV=production it is most often a checkout where `npm ci` never ran: blaming
  // NODE_ENV, which the newcomer had not set, sent them to --include=dev for the wrong reason.
  console.error(
    process.env.NODE_ENV === 'production'
      ? `${missing} (npm ci leaves out the devDependencies when NODE_ENV=production is set, as it is here). Install with ` +
          'npm ci --include=dev, or build where they are installed and run the compiled :prod scripts (docs/operations.md).'
      : `${missing}: run npm ci first (npm ci --include=dev where npm is set to leave out the devDependencies).`,
  );
  process.exit(1);
}
