import { z } from 'zod';

export const ZLoginQuery = z.object({ next: z.string().max(2048).optional() });
