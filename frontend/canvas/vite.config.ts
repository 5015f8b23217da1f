// Builds the canvas as one ES module (canvas.js) plus one stylesheet (canvas.css) with fixed
// names, because Streamlit's component manifest globs must each match exactly one file.
// MAWB_CANVAS_OUT_DIR lets a test rebuild into a temporary directory and compare bytes with
// the committed bundle.
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const here = fileURLToPath(new URL(".", import.meta.url));
const defaultOutDir = resolve(here, "../../mawb/ui/canvas_assets");

export default defineConfig({
  plugins: [react()],
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: process.env.MAWB_CANVAS_OUT_DIR || defaultOutDir,
    emptyOutDir: true,
    copyPublicDir: false,
    minify: true,
    sourcemap: false,
    reportCompressedSize: false,
    cssCodeSplit: false,
    modulePreload: false,
    rolldownOptions: {
      input: resolve(here, "src/index.tsx"),
      // Keep the default export: Streamlit imports the module and calls it.
      preserveEntrySignatures: "exports-only",
      output: {
        format: "es",
        entryFileNames: "canvas.js",
        assetFileNames: "canvas[extname]",
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
