// Vite build of the chat demo into dist/, which `herald serve` serves as
// static files. The SDKs come from their builds in clients/js (npm run build
// there first) instead of the npm registry, so the demo always runs this
// repository's client. `dedupe` keeps one React: @herald/react's files live
// outside this package and would otherwise resolve their own copy.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const sdk = (pkg: string) =>
  fileURLToPath(new URL(`../../clients/js/packages/${pkg}/dist/index.js`, import.meta.url));

export default defineConfig({
  // Relative asset paths: the page works from any folder herald serves.
  base: './',
  plugins: [react()],
  resolve: {
    alias: { '@herald/client': sdk('client'), '@herald/react': sdk('react') },
    dedupe: ['react', 'react-dom'],
  },
  // `npm run dev` serves the page with hot reload and forwards the WebSocket
  // and the API to a herald on :8080 (./scripts/run.sh).
  server: {
    proxy: {
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
      '/api': 'http://127.0.0.1:8080',
    },
  },
});
