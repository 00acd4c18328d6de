import { defineConfig } from 'vite';

// No React plugin: esbuild compiles the JSX (automatic runtime); the demo has no dev server of its own
// (`make run` serves dist/ from devstack.demo_server, which also answers /demo/config and /demo/session).
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    rollupOptions: {
      // React Query marks its modules "use client" (for server components); a browser bundle ignores it.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
});
