import { defineConfig } from 'vite';

// Built into dist/ with FIXED file names (index.html, console.js, console.css, favicon.svg): Envoy
// serves each as a direct response from a route of its own (envoy.yaml, the internal listener), so
// a name may not change between builds. One bundle (no code splitting), no source maps (not served).
// No React plugin: esbuild compiles the JSX (automatic runtime), as for the demo.
export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    rollupOptions: {
      output: {
        entryFileNames: 'console.js',
        chunkFileNames: 'console-[name].js',
        assetFileNames: 'console[extname]',
        inlineDynamicImports: true,
      },
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
    chunkSizeWarningLimit: 2048,
  },
});
