import express from 'express';
import { auditContextOf } from '../../http/audit-context.js';
import { sessionUserOf } from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { Guards } from '../auth/auth.guards.js';
import { ZCreateReceipt, ZPageQuery, ZReceiptId } from './receipts.schema.js';
import type { ReceiptsService } from './receipts.service.js';

/** A researcher's receipts: create one, list them, open one (printable). */
export function receiptsRoutes(deps: { receipts: ReceiptsService; guards: Guards }) {
  const { receipts, guards } = deps;
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
    const id = parseInput(ZReceiptId, req.params.id);
    const { receipt, items } = await receipts.getForUser(sessionUserOf(req).username, id);
    res.render('receipts/show', { title: `Receipt #${receipt.id}`, receipt, items, isAdminView: false });
  });

  return router;
}
