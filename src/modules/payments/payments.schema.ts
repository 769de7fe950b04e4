import { z } from 'zod';

export const ZReceiptIdParam = z.object({ id: z.coerce.number().int().positive().max(2_147_483_647) });
export const ZThanksQuery = z.object({ rid: z.coerce.number().int().positive().max(2_147_483_647) });
export const ZProviderParam = z.object({ provider: z.string().regex(/^[a-z]{1,32}$/, 'is not a provider name') });
export const ZExternalIdParam = z.object({
  externalId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'is not a checkout id'),
});
export const ZDummyChoice = z.object({ choice: z.enum(['pay', 'fail', 'cancel']) });
