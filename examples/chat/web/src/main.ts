import "@fontsource/roboto/400.css";
import "@fontsource/roboto/500.css";
import "@fontsource/roboto/700.css";
import "@mdi/font/css/materialdesignicons.css";
import "vuetify/styles";

import { createApp } from "vue";
import { createVuetify } from "vuetify";

import App from "./App.vue";

const vuetify = createVuetify({
  theme: {
    defaultTheme: "sigma",
    themes: {
      sigma: {
        dark: false,
        colors: {
          primary: "#3f51b5",
          secondary: "#5c6bc0",
          background: "#f4f5fb",
          surface: "#ffffff",
          success: "#2e7d32",
          warning: "#ef6c00",
          error: "#c62828",
        },
      },
    },
  },
  defaults: {
    VTextField: { variant: "outlined", density: "comfortable" },
  },
});

createApp(App).use(vuetify).mount("#app");
