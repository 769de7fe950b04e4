import { Router } from 'express';
import type { Guards } from '../auth/auth.guards.js';

export interface AdminSection {
  href: string;
  title: string;
  description: string;
}

/** The admin start page: one card per admin section the app has. */
export function adminRoutes(deps: { guards: Guards; sections: AdminSection[] }): Router {
  const router = Router();
  router.get('/admin', deps.guards.requireAdmin, (_req, res) => {
    res.render('admin/index', { title: 'Admin', sections: deps.sections });
  });
  return router;
}
