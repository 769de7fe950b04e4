import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/modules/metrics/metrics.js';
import { PROJECT_ROOT } from '../../src/shared/paths.js';

const NAME = 'slurm_ingest_last_success_timestamp_seconds';

// A quiet cluster's runs find no job and still succeed: they move the gauge, as they should, or
// IngestionStale would page every night. "Run that read new jobs" told an operator the opposite,
// and led them to look for a stuck ingestion when the cluster was only idle.
describe(`${NAME} is described as any successful run reading up to now, jobs found or not`, () => {
  it('in its HELP line', async () => {
    const text = await createMetrics().registry.metrics();
    const help = text.split('\n').find((line) => line.startsWith(`# HELP ${NAME} `)) ?? '';
    expect(help).not.toMatch(/new jobs/i);
    expect(help).toMatch(/no job/i);
  });

  it("in the operations guide's metrics table", () => {
    const guide = readFileSync(path.join(PROJECT_ROOT, 'docs/operations.md'), 'utf8');
    const row = guide.split('\n').find((line) => line.startsWith(`| \`${NAME}\` |`)) ?? '';
    expect(row).not.toMatch(/new jobs/i);
    expect(row).toMatch(/no job/i);
  });
});
