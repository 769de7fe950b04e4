import { Router } from 'express';
import { prefersJson } from '../../http/error-handler.js';
import { answerHeadWithoutWork } from '../../http/route-helpers.js';
import type { Guards } from '../auth/auth.guards.js';

export interface AdminSection {
  href: string;
  title: string;
  description: string;
}

/** The admin start page: one card per admin section the app has. */
export function adminRoutes(deps: { guards: Guards; sections: AdminSection[] }): Router {
  const router = Router();
  router.get('/admin', deps.guards.requireAdmin, (req, res) => {
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the page not rendered.
    if (req.method === 'HEAD') {
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    // A script finds the admin sections here as a browser does; it got the HTML page.
    if (prefersJson(req)) {
      res.json({ sections: deps.sections.map(({ href, title, description }) => ({ href, title, description })) });
      return;
    }
    res.render('admin/index', { title: 'Admin', sections: deps.sections });
  });
  return router;
}
