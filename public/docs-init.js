// The interactive reference for /openapi.json. Fonts and every request stay on this origin.
Scalar.createApiReference("#app", {
  url: "/openapi.json",
  withDefaultFonts: false,
  hideClientButton: false,
  telemetry: false,
  servers: [{ url: window.location.origin }],
});
