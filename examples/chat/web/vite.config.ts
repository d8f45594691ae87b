import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";
import vuetify from "vite-plugin-vuetify";

// `npm run build` writes dist/, which the Python server (python -m examples.chat) serves on the
// same port as its WebSocket. `npm run dev` serves the app with hot reload and forwards /ws to a
// chat server on port 3000 (start it first).
export default defineConfig({
  plugins: [vue(), vuetify({ autoImport: true })],
  build: {
    target: "es2022",
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: { "/ws": { target: "ws://127.0.0.1:3000", ws: true } },
  },
});
