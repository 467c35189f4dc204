import { dirname, join } from 'node:path';
import express, { Router } from 'express';

/**
 * The page a newcomer sees at `GET /`: headline numbers and tokens/s per model, computed in the browser from
 * `/metrics` once a second. Static files only (no build step); the chart library, uPlot, is served from the app's
 * own node_modules, so the page needs no network beyond this server.
 */
export function livePage(): Router {
  const router = Router();
  const uplot = dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  router.get('/vendor/uplot/uPlot.iife.min.js', (_req, res) => res.sendFile(join(uplot, 'uPlot.iife.min.js')));
  router.get('/vendor/uplot/uPlot.min.css', (_req, res) => res.sendFile(join(uplot, 'uPlot.min.css')));
  router.use(express.static(join(__dirname, 'public'), { index: 'index.html', fallthrough: true }));
  return router;
}
