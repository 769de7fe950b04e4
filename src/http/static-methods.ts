import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { RequestHandler } from 'express';
import { MethodNotAllowedError } from '../shared/errors.js';

const STATIC_METHODS = ['GET', 'HEAD'];

/**
 * Mounted at /static after express.static, which answers GET and HEAD and passes on any other method:
 * another method on a file that is there (PUT /static/css/app.css) is a 405 with `Allow: GET, HEAD`,
 * and OPTIONS of it a 204 naming them, where both were "404 Page not found." (the routes, which the
 * 405s are read from, do not know the files). The files are listed once, at start: they ship with
 * the app. An address no file is at goes on to the 404.
 */
export function refuseOtherMethodsOnStaticFiles(publicDir: string): RequestHandler {
  const files = new Set(
    readdirSync(publicDir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map(
        (entry) => `/${path.relative(publicDir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/')}`,
      ),
  );
  return (req, res, next) => {
    if (STATIC_METHODS.includes(req.method) || !files.has(req.path)) {
      next();
      return;
    }
    if (req.method === 'OPTIONS') {
      res.set('Allow', STATIC_METHODS.join(', ')).status(204).end();
      return;
    }
    next(new MethodNotAllowedError(`${req.baseUrl}${req.path}`, req.method, STATIC_METHODS));
  };
}
