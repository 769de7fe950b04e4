import type { z } from 'zod';
import { strictBody } from '../../http/strict-body.js';

/**
 * POST /admin/ingestion/run: no fields but the CSRF token. Run now reads the default window (the
 * backfill of given days is `npm run ingest -- --from … --to …`), so a window sent to it is refused by
 * name: it was ignored, and a script sending `from` and `to` was answered `ok: true` for a run over
 * another window than the one it asked for.
 */
export const ZRunNow = strictBody({});
export type TRunNow = z.infer<typeof ZRunNow>;
