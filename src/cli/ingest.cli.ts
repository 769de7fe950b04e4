import { watchStartUp } from './ingest.signals.js';

// Watched before the command's modules load (Prisma, the sources: most of a second): a signal
// then took Node's default action, and the process died without a word.
const startUp = watchStartUp();
const { runIngestCommand } = await import('./ingest.command.js');
runIngestCommand(startUp);
