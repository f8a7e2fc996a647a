// Starts Swagger UI on the /docs page (supportdesk.docs). A file of its own, not an inline
// script, so that the page works under `Content-Security-Policy: default-src 'self'`.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // no validator badge: it would send the document to validator.swagger.io
  validatorUrl: null,
});
