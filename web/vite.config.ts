import path from 'node:path';
import { defineConfig } from 'vite';

// The dashboard, built at `npm run build` into dist/web (served by `dan serve`, shipped in the package and the
// image). Everything is bundled: no CDN, nothing fetched at run time. JSX is Preact's automatic runtime.
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: path.join(import.meta.dirname, '..', 'dist', 'web'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
});
