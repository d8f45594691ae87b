// Builds sigma_ops/dashboard/dashboard.js (committed, so an installed package serves it with no
// Node): src/main.ts and the TypeScript client (clients/js/src) in one ES module.
// Run through build.sh, which uses the chat web app's Vite.
import { fileURLToPath } from "node:url";


const here = fileURLToPath(new URL(".", import.meta.url));
export default {
  root: here,
  logLevel: "warn",
  resolve: {
    // (The subpath first: an alias matches a prefix.)
    alias: [
      { find: "sigmasockets-client/msgpack", replacement: `${here}../../clients/js/src/msgpack.ts` },
      { find: "sigmasockets-client", replacement: `${here}../../clients/js/src/index.ts` },
    ],
  },
  build: {
    target: "es2022",
    outDir: `${here}.build`,
    emptyOutDir: true,
    minify: true,
    lib: { entry: `${here}src/main.ts`, formats: ["es"], fileName: () => "dashboard.js" },
  },
};
