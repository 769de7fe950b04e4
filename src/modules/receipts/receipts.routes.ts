import express from 'express';
import { auditContextOf } from '../../http/audit-context.js';
import type { CsvExports } from '../../http/csv-exports.js';
import { sessionUserOf } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { Guards } from '../auth/auth.guards.js';
import { linkTo } from '../usage/usage.routes.js';
import { ZCreateReceipt, ZPageQuery, ZReceiptId } from './receipts.schema.js';
import { RECEIPT_ITEMS_CSV_COLUMNS, type ReceiptsService } from './receipts.service.js';

/** A researcher's receipts: create one, list them, open one (printable). */
export function receiptsRoutes(deps: { receipts: ReceiptsService; csvExports: CsvExports; guards: Guards }) {
  const { receipts, csvExports, guards } = deps;
  const router = express.Router();

  router.post('/me/receipt', guards.requireUser, async (req, res) => {
    const input = parseInput(ZCreateReceipt, req.body);
    const receipt = await receipts.createForUser(sessionUserOf(req), input.before, auditContextOf(req));
    res.redirect(303, `/me/receipts/${receipt.id}`);
  });

  router.get('/me/receipts', guards.requireUser, async (req, res) => {
    const { page } = parseInput(ZPageQuery, req.query);
    const list = await receipts.listForUser(sessionUserOf(req).username, page);
    res.render('receipts/list', { title: 'My receipts', list });
  });

  router.get('/me/receipts/:id', guards.requireUser, async (req, res) => {
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    const { page } = parseInput(ZPageQuery, req.query);
    const shown = await receipts.getForUser(sessionUserOf(req).username, id, page);
    res.render('receipts/show', {
      title: `Receipt #${id}`,
      ...shown,
      isAdminView: false,
      link: (changes: Record<string, unknown>) => linkTo(`/me/receipts/${id}`, {}, changes),
      itemsCsvLink: `/me/receipts/${id}/items.csv`,
    });
  });

  router.get('/me/receipts/:id/items.csv', guards.requireUser, async (req, res) => {
    const id = parseInput(ZReceiptId, req.params.id, 'receipt id');
    const { username } = sessionUserOf(req);
    await csvExports.send(req, res, {
      kind: 'receipt_items',
      username,
      async open() {
        const { chunks } = await receipts.streamItemsCsv(id, username);
        return { filename: `receipt-${id}-items.csv`, columns: RECEIPT_ITEMS_CSV_COLUMNS, chunks };
      },
    });
  });

  return router;
}
