// Loaded before tsx by the npm scripts that run the TypeScript source (`node --import
// ./scripts/require-tsx.mjs --import tsx ...`). tsx is a devDependency, which `npm ci` leaves out
// when NODE_ENV=production is set; Node's own "Cannot find package 'tsx'", with a stack, said
// neither why nor what to do.
try {
  import.meta.resolve('tsx');
} catch {
  const command = process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}` : 'This command';
  console.error(
    `${command} cannot start: tsx, the devDependency that runs the TypeScript source, is not installed ` +
      '(npm ci leaves out the devDependencies when NODE_ENV=production is set). Install with ' +
      'npm ci --include=dev, or build where they are installed and run the compiled :prod scripts (docs/operations.md).',
  );
  process.exit(1);
}
